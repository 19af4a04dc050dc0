// CPU reference for bench/tcp-echo.ts: a single-threaded, level-triggered epoll TCP echo server.
//   tcp_echo PORT      (0 = pick) listens on 127.0.0.1, prints "listening 127.0.0.1:PORT" once
//                      bound, echoes every byte back in order until killed.
// Per readable connection: one read into a 64 KiB buffer and one write of what it got back, so a
// small request costs one read and one write (plus its share of an epoll_wait). What the socket
// does not take is kept, the connection stops reading and waits for EPOLLOUT until it is written.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)
#define EVENTS 256

struct conn {
  int fd;
  char *pending;  // bytes read but not yet written back (only when the socket was full)
  size_t off, len;
};

static int ep;
static char buf[BUF];

static void drop(struct conn *c) {
  close(c->fd);  // also removes it from the epoll set
  free(c->pending);
  free(c);
}

static void interest(struct conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

// Writes what is pending; returns -1 on error, 0 if some is still pending, 1 once all is written.
static int flush(struct conn *c) {
  while (c->off < c->len) {
    ssize_t w = write(c->fd, c->pending + c->off, c->len - c->off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : -1;
    }
    c->off += (size_t)w;
  }
  c->off = c->len = 0;
  return 1;
}

// Reads once and echoes it; returns -1 when the connection is done with.
static int readable(struct conn *c) {
  ssize_t n = read(c->fd, buf, BUF);
  if (n <= 0) return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  ssize_t w = write(c->fd, buf, (size_t)n);
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) return -1;
    w = 0;
  }
  if (w < n) {  // the socket is full: keep the rest, stop reading until it is written
    size_t rest = (size_t)(n - w);
    char *p = realloc(c->pending, rest);
    if (p == NULL) return -1;
    memcpy(p, buf + w, rest);
    c->pending = p;
    c->off = 0;
    c->len = rest;
    interest(c, EPOLLOUT);
  }
  return 0;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  signal(SIGPIPE, SIG_IGN);  // a peer that went away is an EPIPE from write, not a signal
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0) {
    perror("listen");
    return 1;
  }
  socklen_t alen = sizeof(addr);
  getsockname(lfd, (struct sockaddr *)&addr, &alen);
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};  // NULL marks the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  printf("listening 127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  struct epoll_event events[EVENTS];
  for (;;) {
    int n = epoll_wait(ep, events, EVENTS, -1);
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c == NULL) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;  // EAGAIN, or out of fds / memory: try again on the next event
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          struct conn *nc = calloc(1, sizeof(*nc));
          if (nc == NULL) {
            close(fd);
            continue;
          }
          nc->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(nc);
          }
        }
        continue;
      }
      unsigned e = events[i].events;
      if (c->len > 0) {  // waiting to write the rest
        int f = (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? flush(c) : 0;
        if (f < 0) {
          drop(c);
        } else if (f > 0) {
          interest(c, EPOLLIN);
        }
      } else if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (readable(c) < 0) drop(c);
      }
    }
  }
}
