// Idle connections for bench/tcp-idle.ts.
//   tcp_idle PORT COUNT SECONDS
// Raises its own RLIMIT_NOFILE to COUNT + 100, opens COUNT TCP connections to 127.0.0.1:PORT
// (non-blocking, at most 512 connecting at once), prints "connected COUNT" once every one is
// established, then holds them all idle (sending nothing) for SECONDS and exits, closing them.
// Exits with 1 if the limit cannot be raised or a connection fails, or if they are not all
// connected within 30 s: the whole run takes at most 30 s + SECONDS.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 512
#define CONNECT_TIMEOUT_MS 30000

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tcp_idle PORT COUNT SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]);
  int count = atoi(argv[2]);
  double seconds = atof(argv[3]);
  if (port <= 0 || count < 1) {
    fprintf(stderr, "tcp_idle: bad arguments\n");
    return 2;
  }
  struct rlimit rl = {.rlim_cur = (rlim_t)count + 100, .rlim_max = (rlim_t)count + 100};
  struct rlimit old;
  getrlimit(RLIMIT_NOFILE, &old);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max > rl.rlim_max) rl.rlim_max = old.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
    fprintf(stderr, "tcp_idle: cannot raise the fd limit to %d: %s\n", count + 100,
            strerror(errno));
    return 1;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int *fds = calloc((size_t)count, sizeof(int));
  int opened = 0, connecting = 0, connected = 0;
  int64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
  struct epoll_event events[WINDOW];
  while (connected < count) {
    while (opened < count && connecting < WINDOW) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0 || (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)) {
        fprintf(stderr, "tcp_idle: connection %d: %s\n", opened, strerror(errno));
        return 1;
      }
      fds[opened++] = fd;
      connecting++;
      struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      fprintf(stderr, "tcp_idle: only %d of %d connected within %d ms\n", connected, count,
              CONNECT_TIMEOUT_MS);
      return 1;
    }
    int n = epoll_wait(ep, events, WINDOW, (int)left);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd, err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fprintf(stderr, "tcp_idle: connect: %s\n", strerror(err));
        return 1;
      }
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);  // established: nothing more to wait for
      connecting--;
      connected++;
    }
  }
  printf("connected %d\n", connected);
  fflush(stdout);
  struct timespec hold = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&hold, &hold) < 0 && errno == EINTR) {
  }
  return 0;  // exiting closes every connection
}
