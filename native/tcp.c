// bun-sansio native shim, TCP sockets: the synchronous calls both backends make (listening,
// new sockets, what an accepted connection is, options), and the epoll backend's non-blocking
// accept, connect, receive and send. Every fd this file opens is tracked in the ledger.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

static void copy_addr(uint8_t *out, const struct sockaddr_storage *ss, socklen_t len) {
  memset(out, 0, SIO_ADDR_BYTES);
  memcpy(out, ss, len < SIO_ADDR_BYTES ? len : SIO_ADDR_BYTES);
}

static int fail_close(int fd) {
  int e = errno;
  close(fd);
  return -e;
}

// A non-blocking TCP listener bound to `bind_addr` (SO_REUSEADDR always, SO_REUSEPORT when
// asked), listening with `backlog`; writes the real bound address to `bound`. Returns the fd or
// -errno.
EXPORT int32_t sio_tcp_listen(const uint8_t *bind_addr, int32_t backlog, int32_t reuse_port,
                              uint8_t *bound) {
  sa_family_t family;
  memcpy(&family, bind_addr, sizeof(family));
  if (family != AF_INET && family != AF_INET6) return -EAFNOSUPPORT;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) return fail_close(fd);
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
    return fail_close(fd);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  memcpy(&ss, bind_addr, addr_len(bind_addr));
  if (bind(fd, (struct sockaddr *)&ss, addr_len(bind_addr)) < 0) return fail_close(fd);
  if (listen(fd, backlog) < 0) return fail_close(fd);
  socklen_t len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return fail_close(fd);
  copy_addr(bound, &ss, len);
  sio_ledger_track_fd(fd);
  return fd;
}

// A new non-blocking TCP socket of the family of `to` (TCP_NODELAY set), to connect. Returns
// the fd or -errno.
EXPORT int32_t sio_tcp_socket(const uint8_t *to) {
  sa_family_t family;
  memcpy(&family, to, sizeof(family));
  if (family != AF_INET && family != AF_INET6) return -EAFNOSUPPORT;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sio_ledger_track_fd(fd);
  return fd;
}

// Takes over a connection the kernel accepted (or connected): tracks its fd in the ledger (when
// `track`), sets TCP_NODELAY, and writes its peer and local addresses. Returns 0 or -errno
// (ENOTCONN: the peer is already gone; the caller closes it).
EXPORT int32_t sio_tcp_adopt(int32_t fd, int32_t track, uint8_t *peer, uint8_t *local) {
  if (track) sio_ledger_track_fd(fd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  copy_addr(peer, &ss, len);
  len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  copy_addr(local, &ss, len);
  return 0;
}

// Makes a later close of `fd` send a reset instead of a FIN (SO_LINGER {1, 0}). Returns 0 or -errno.
EXPORT int32_t sio_tcp_linger0(int32_t fd) {
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0 ? -errno : 0;
}

// Shuts down the write side of `fd` (the peer reads a FIN). Returns 0 or -errno.
EXPORT int32_t sio_tcp_shutdown(int32_t fd) {
  return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}

// The pending error of `fd` (SO_ERROR) as -errno, 0 when none.
EXPORT int32_t sio_tcp_so_error(int32_t fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  return -err;
}

// epoll: accepts one connection from listener `fd` (non-blocking, close-on-exec; not yet
// tracked: sio_tcp_adopt takes it over). Returns the fd, -EAGAIN when none is waiting, or -errno.
EXPORT int32_t sio_tcp_accept(int32_t fd) {
  int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (c < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  return c;
}

// epoll: starts connecting `fd` to `to`. Returns 0 when connected at once, -EINPROGRESS while
// under way (wait for EPOLLOUT, then sio_tcp_so_error), or -errno.
EXPORT int32_t sio_tcp_connect(int32_t fd, const uint8_t *to) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  memcpy(&ss, to, addr_len(to));
  return connect(fd, (struct sockaddr *)&ss, addr_len(to)) < 0 ? -errno : 0;
}

// epoll: reads up to `len` bytes of `fd` into `buf`. Returns the count, 0 at the peer's FIN,
// -EAGAIN when nothing is waiting, or -errno.
EXPORT int32_t sio_tcp_recv(int32_t fd, uint8_t *buf, uint32_t len) {
  ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
  if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  return (int32_t)r;
}

// epoll: sends up to `len` bytes at `buf` without SIGPIPE. Returns the bytes taken (maybe
// fewer), -EAGAIN when none fit, or -errno.
EXPORT int32_t sio_tcp_send(int32_t fd, const uint8_t *buf, uint32_t len) {
  ssize_t r = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  return (int32_t)r;
}

// epoll: sends what the `count` iovecs at `iovs` (base u64, length u64 each) point at, without
// SIGPIPE. Returns the bytes taken (maybe fewer), -EAGAIN when none fit, or -errno.
EXPORT int32_t sio_tcp_sendv(int32_t fd, const uint8_t *iovs, uint32_t count) {
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = (struct iovec *)iovs;
  msg.msg_iovlen = count;
  ssize_t r = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  return (int32_t)r;
}
