// Closed-loop TCP request/response load generator for bench/tcp-echo.ts (single thread, epoll).
//   tcp_load PORT SECONDS SIZE CONNECTIONS
// Opens CONNECTIONS connections to 127.0.0.1:PORT (TCP_NODELAY); each writes a request of SIZE
// bytes, reads SIZE bytes back, checks them against what it sent, and starts the next, for
// SECONDS. Every request is a different pseudo-random pattern (a window of a random pool at an
// offset hashed from connection and sequence number), so a lost, repeated, reordered or altered
// byte shows up as corrupt. Partial
// reads and writes are handled. Latency (first write to last byte read) goes into a histogram of
// 100 ns buckets up to 100 ms, then 100 us buckets up to 10 s. Prints one line at the end:
//   requests N seconds S rps R p50_us X p99_us Y errors E corrupt C cpu_s T
// (T: this generator's own CPU time, user + system, over the S seconds: near S, it was the limit)
// and exits with 1 if a connection could not be made (2 on bad arguments). A connection that
// fails or is closed during the run counts one error and is dropped. Never runs past SECONDS.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FINE_NS 100       // below 100 ms
#define FINE 1000000
#define COARSE_NS 100000  // 100 ms to 10 s
#define COARSE 99000
#define BUCKETS (FINE + COARSE)
#define EVENTS 256

struct conn {
  int fd, id, writing;  // writing: EPOLLOUT is in the interest set
  uint64_t seq, t0;
  size_t woff, roff;
  const unsigned char *out;  // the request: a window of the pool
  unsigned char *in;
};

static uint32_t hist[BUCKETS];
static int ep;
static size_t size;
static uint64_t requests, errors, corrupt;

static size_t bucket(uint64_t ns) {
  if (ns < (uint64_t)FINE * FINE_NS) return ns / FINE_NS;
  uint64_t b = FINE + (ns - (uint64_t)FINE * FINE_NS) / COARSE_NS;
  return b < BUCKETS ? b : BUCKETS - 1;
}

// the middle of bucket b, in microseconds
static double bucket_us(size_t b) {
  if (b < FINE) return (b + 0.5) * FINE_NS / 1000.0;
  return ((double)FINE * FINE_NS + (b - FINE + 0.5) * COARSE_NS) / 1000.0;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// Requests are windows of one pseudo-random pool at offsets that vary per request, so building one
// costs nothing and checking it is one memcmp, while a byte from another request (lost, stale,
// reordered) almost surely differs.
#define SPREAD (1 << 20)
static unsigned char *pool;

static void make_pool(void) {
  pool = malloc(size + SPREAD);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < size + SPREAD; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pool[i] = (unsigned char)(x >> 24);
  }
}

static void interest(struct conn *c, int writing) {
  if (c->writing == writing) return;
  c->writing = writing;
  struct epoll_event ev = {.events = EPOLLIN | (writing ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void fail(struct conn *c) {
  errors++;
  close(c->fd);
  c->fd = -1;
}

// Writes what is left of the request; returns -1 on error.
static int try_write(struct conn *c) {
  while (c->woff < size) {
    ssize_t w = send(c->fd, c->out + c->woff, size - c->woff, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return -1;
      interest(c, 1);
      return 0;
    }
    c->woff += (size_t)w;
  }
  interest(c, 0);
  return 0;
}

static int start(struct conn *c) {
  c->seq++;
  uint64_t h = (((uint64_t)c->id << 32) ^ c->seq) * 0x9E3779B97F4A7C15ull;
  c->out = pool + (h >> 44);  // the top 20 bits: an offset below SPREAD
  c->woff = c->roff = 0;
  c->t0 = now_ns();
  return try_write(c);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: tcp_load PORT SECONDS SIZE CONNECTIONS\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double seconds = atof(argv[2]);
  long sz = atol(argv[3]);
  int nconn = atoi(argv[4]);
  if (port <= 0 || sz < 1 || nconn < 1) {
    fprintf(stderr, "tcp_load: bad arguments\n");
    return 2;
  }
  size = (size_t)sz;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ep = epoll_create1(EPOLL_CLOEXEC);
  make_pool();
  struct conn *conns = calloc((size_t)nconn, sizeof(*conns));
  for (int i = 0; i < nconn; i++) {
    struct conn *c = &conns[i];
    c->id = i;
    c->in = malloc(size);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};  // bounds a blocking connect to a server that never accepts
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
      fprintf(stderr, "tcp_load: connection %d to 127.0.0.1:%d: %s\n", i, port, strerror(errno));
      return 1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }

  double cpu0 = cpu_s();
  uint64_t begin = now_ns(), end = begin + (uint64_t)(seconds * 1e9);
  int live = nconn;
  for (int i = 0; i < nconn; i++)
    if (start(&conns[i]) < 0) fail(&conns[i]), live--;
  struct epoll_event events[EVENTS];
  uint64_t t = begin;
  while (live > 0 && t < end) {
    int timeout = (int)((end - t) / 1000000) + 1;
    int n = epoll_wait(ep, events, EVENTS, timeout);
    t = now_ns();
    for (int i = 0; i < n && t < end; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->fd < 0) continue;
      unsigned e = events[i].events;
      if ((e & EPOLLOUT) && c->woff < size && try_write(c) < 0) {
        fail(c), live--;
        continue;
      }
      if (!(e & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      ssize_t r = read(c->fd, c->in + c->roff, size - c->roff);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {  // closed by the server, or an error
        fail(c), live--;
        continue;
      }
      c->roff += (size_t)r;
      if (c->roff < size) continue;
      if (c->woff < size || memcmp(c->in, c->out, size) != 0) corrupt++;
      t = now_ns();
      hist[bucket(t - c->t0)]++;
      requests++;
      if (t < end && start(c) < 0) fail(c), live--;
    }
  }
  double elapsed = (double)(now_ns() - begin) / 1e9, cpu = cpu_s() - cpu0;
  double pct[2] = {0, 0}, qs[2] = {0.5, 0.99};
  for (int q = 0; q < 2; q++) {
    uint64_t rank = (uint64_t)(qs[q] * (double)requests), seen = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
      seen += hist[b];
      if (seen > rank) {
        pct[q] = bucket_us(b);
        break;
      }
    }
  }
  printf(
      "requests %llu seconds %.3f rps %.0f p50_us %.1f p99_us %.1f errors %llu corrupt %llu cpu_s "
      "%.3f\n",
      (unsigned long long)requests, elapsed, (double)requests / elapsed, pct[0], pct[1],
      (unsigned long long)errors, (unsigned long long)corrupt, cpu);
  return 0;
}
