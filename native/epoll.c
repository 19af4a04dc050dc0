// bun-sansio native shim, epoll part: the readiness loop and recvmmsg/sendmmsg batches the epoll
// backend uses where io_uring is missing. Record layouts come from sansio_abi.h (src/sys/abi.ts).
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim.h"

EXPORT int32_t sio_epoll_new(void) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return -errno;
  sio_ledger_track_fd(fd);
  return fd;
}

// Adds (op 1), modifies (op 2) or removes (op 3) `fd` with `events` and the 64-bit `token`.
EXPORT int32_t sio_epoll_ctl(int32_t ep, int32_t op, int32_t fd, uint32_t events, uint64_t token) {
  struct epoll_event ev = {.events = events, .data.u64 = token};
  int cop = op == 1 ? EPOLL_CTL_ADD : op == 2 ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
  return epoll_ctl(ep, cop, fd, &ev) < 0 ? -errno : 0;
}

// Waits for events; `out` receives pairs (token u64, events u32, pad u32). Returns count or -errno.
EXPORT int32_t sio_epoll_wait(int32_t ep, uint8_t *out, int32_t max, int32_t timeout_ms) {
  struct epoll_event evs[256];
  if (max > 256) max = 256;
  int n = epoll_wait(ep, evs, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    memcpy(out + i * SIO_EPOLL_EVENT_BYTES, &evs[i].data.u64, 8);
    memcpy(out + i * SIO_EPOLL_EVENT_BYTES + 8, &evs[i].events, 4);
  }
  return n;
}

// Receives up to `n` datagrams from `fd` into `bufs` (n buffers of `buf_size` bytes). For each,
// `meta` gets SIO_EPOLL_META_BYTES: length (i32; the full datagram length), flags (u32; MSG_TRUNC when cut),
// pad (8), source address (28, raw sockaddr), pad (4). Returns the count, 0 when nothing is waiting, or -errno.
EXPORT int32_t sio_recvmmsg(int32_t fd, uint8_t *bufs, uint32_t buf_size, uint32_t n,
                            uint8_t *meta) {
  struct mmsghdr msgs[64];
  struct iovec iovs[64];
  struct sockaddr_storage names[64];
  if (n > 64) n = 64;
  for (uint32_t i = 0; i < n; i++) {
    iovs[i].iov_base = bufs + (size_t)i * buf_size;
    iovs[i].iov_len = buf_size;
    memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
    msgs[i].msg_hdr.msg_name = &names[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int r = recvmmsg(fd, msgs, n, MSG_DONTWAIT | MSG_TRUNC, NULL);
  if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
  for (int i = 0; i < r; i++) {
    int32_t len = (int32_t)msgs[i].msg_len;
    uint32_t flags = (uint32_t)msgs[i].msg_hdr.msg_flags;
    memcpy(meta + i * SIO_EPOLL_META_BYTES, &len, 4);
    memcpy(meta + i * SIO_EPOLL_META_BYTES + 4, &flags, 4);
    memset(meta + i * SIO_EPOLL_META_BYTES + SIO_EPOLL_META_ADDR, 0, SIO_ADDR_BYTES);
    socklen_t nl = msgs[i].msg_hdr.msg_namelen;
    memcpy(meta + i * SIO_EPOLL_META_BYTES + SIO_EPOLL_META_ADDR, &names[i], nl < SIO_ADDR_BYTES ? nl : SIO_ADDR_BYTES);
  }
  return r;
}

// Sends `n` datagrams on `fd`. `entries` holds n records of SIO_EPOLL_ENTRY_BYTES: data pointer (u64),
// length (u32), pad (4), destination (28, raw sockaddr), pad (4). Returns how many were sent (the rest would block),
// or -errno when the first one fails for another reason.
EXPORT int32_t sio_sendmmsg(int32_t fd, const uint8_t *entries, uint32_t n) {
  struct mmsghdr msgs[64];
  struct iovec iovs[64];
  struct sockaddr_storage names[64];
  if (n > 64) n = 64;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = entries + i * SIO_EPOLL_ENTRY_BYTES;
    uint64_t ptr;
    uint32_t len;
    memcpy(&ptr, e, 8);
    memcpy(&len, e + 8, 4);
    iovs[i].iov_base = (void *)(uintptr_t)ptr;
    iovs[i].iov_len = len;
    memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
    socklen_t nl = addr_len(e + SIO_EPOLL_ENTRY_ADDR);
    memcpy(&names[i], e + SIO_EPOLL_ENTRY_ADDR, nl);
    msgs[i].msg_hdr.msg_namelen = nl;
    msgs[i].msg_hdr.msg_name = &names[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
  if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
  return r;
}
