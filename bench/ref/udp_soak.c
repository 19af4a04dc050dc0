// Paced, random-size UDP load generator for bench/soak.ts.
//   udp_soak PORT SECONDS RATE WINDOW SEED INTERVAL
// Sends datagrams to 127.0.0.1:PORT from 8 connected sockets (round robin by sequence number) at
// RATE datagrams/s (a token bucket holding at most WINDOW tokens) with at most WINDOW in flight,
// for SECONDS; then stops sending and waits for the datagrams still in flight. A datagram not
// echoed within 1 s is counted lost.
//
// Sizes come from the sequence number and SEED (so a seed gives the same sizes every run):
// 70% 16..200 B, 25% 201..1472 B, 5% 1473..65507 B, each uniform. Layout: sequence number
// (u64 LE), size (u32 LE), a 32-bit hash of seed, sequence number and size, then bytes from a
// PRNG seeded with seed and sequence number. Every echo is checked whole: its size, header and
// every byte, and that it came back on the socket that sent it.
//
// Accounting: sent = echoed + lost at the end. An intact echo of a datagram already counted lost
// is "late"; a second intact echo is "duplicate"; anything else that is not an intact echo of a
// datagram in flight is "corrupt" (the datagram it claims to be stays in flight, so it is lost).
// Every INTERVAL seconds, and once at the end ("final":1), prints one JSON line of cumulative
// counters: t, sent, echoed, lost, late, duplicate, corrupt, inflight, send_errors, recv_errors,
// and rx_drops: datagrams the kernel dropped at this program's sockets (receive queue full).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SOCKETS 8
#define BATCH 16
#define MAX_SIZE 65507
#define MIN_SIZE 16
#define LOSS_TIMEOUT 1.0
#define MAX_WINDOW 4096

enum { IN_FLIGHT = 0, ECHOED = 1, LOST = 2, LATE = 3 };

struct slot {
  uint64_t seq;
  double sent_at;
  int used;
};

static uint64_t seed;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint32_t size_of(uint64_t seq) {
  uint64_t r = mix(seed ^ mix(seq));
  uint32_t bucket = (uint32_t)(r % 100);
  uint64_t u = r >> 32;
  if (bucket < 70) return 16 + (uint32_t)(u % (200 - 16 + 1));
  if (bucket < 95) return 201 + (uint32_t)(u % (1472 - 201 + 1));
  return 1473 + (uint32_t)(u % (MAX_SIZE - 1473 + 1));
}

static uint32_t header_check(uint64_t seq, uint32_t size) {
  return (uint32_t)mix(seed * 31 + seq * 0x100000001b3ULL + size);
}

// Writes (or, with check != 0, compares against) the datagram of `seq`; returns 0 if it differs.
static int pattern(uint8_t *buf, uint64_t seq, uint32_t size, int check) {
  uint8_t head[16];
  uint32_t hc = header_check(seq, size);
  memcpy(head, &seq, 8);
  memcpy(head + 8, &size, 4);
  memcpy(head + 12, &hc, 4);
  if (check) {
    if (memcmp(buf, head, 16) != 0) return 0;
  } else {
    memcpy(buf, head, 16);
  }
  uint64_t s = mix(seed ^ (seq * 0x9e3779b97f4a7c15ULL)) | 1;
  for (uint32_t at = 16; at < size; at += 8) {
    s ^= s << 13;  // xorshift64
    s ^= s >> 7;
    s ^= s << 17;
    uint32_t n = size - at < 8 ? size - at : 8;
    if (check) {
      if (memcmp(buf + at, &s, n) != 0) return 0;
    } else {
      memcpy(buf + at, &s, n);
    }
  }
  return 1;
}

static uint8_t *state;  // one byte per sequence number sent
static size_t state_cap;
static struct slot slots[MAX_WINDOW];
static int window;
static uint64_t next_seq, echoed, lost, late, duplicate, corrupt, send_errors, recv_errors;
static long inflight;

static void report(const int *fds, double t, int final) {
  unsigned long long drops = 0;
  for (int s = 0; s < SOCKETS; s++) {
    uint32_t mem[SK_MEMINFO_VARS] = {0};
    socklen_t len = sizeof(mem);
    if (getsockopt(fds[s], SOL_SOCKET, SO_MEMINFO, mem, &len) == 0) drops += mem[SK_MEMINFO_DROPS];
  }
  printf(
      "{\"t\":%.3f,\"sent\":%llu,\"echoed\":%llu,\"lost\":%llu,\"late\":%llu,\"duplicate\":%llu,"
      "\"corrupt\":%llu,\"inflight\":%ld,\"send_errors\":%llu,\"recv_errors\":%llu,"
      "\"rx_drops\":%llu,\"final\":%d}\n",
      t, (unsigned long long)next_seq, (unsigned long long)echoed, (unsigned long long)lost,
      (unsigned long long)late, (unsigned long long)duplicate, (unsigned long long)corrupt, inflight,
      (unsigned long long)send_errors, (unsigned long long)recv_errors, drops, final);
  fflush(stdout);
}

static int send_one(int *fds, double t) {
  static uint8_t out[MAX_SIZE];
  int free_slot = -1;
  for (int i = 0; i < window; i++)
    if (!slots[i].used) {
      free_slot = i;
      break;
    }
  if (free_slot < 0) return 0;
  uint64_t seq = next_seq;
  uint32_t size = size_of(seq);
  pattern(out, seq, size, 0);
  if (send(fds[seq % SOCKETS], out, size, MSG_DONTWAIT) < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) send_errors++;
    return 0;  // not sent: the same sequence number is tried again
  }
  if (seq >= state_cap) {
    size_t cap = state_cap * 2;
    uint8_t *grown = realloc(state, cap);
    if (grown == NULL) {
      perror("realloc");
      exit(1);
    }
    memset(grown + state_cap, IN_FLIGHT, cap - state_cap);
    state = grown;
    state_cap = cap;
  }
  state[seq] = IN_FLIGHT;
  slots[free_slot] = (struct slot){.seq = seq, .sent_at = t, .used = 1};
  next_seq++;
  inflight++;
  return 1;
}

static void on_echo(const uint8_t *buf, size_t len, int sock) {
  uint64_t seq;
  if (len < MIN_SIZE) {
    corrupt++;
    return;
  }
  memcpy(&seq, buf, 8);
  if (seq >= next_seq || len != size_of(seq) || (int)(seq % SOCKETS) != sock ||
      !pattern((uint8_t *)buf, seq, (uint32_t)len, 1)) {
    corrupt++;
    return;
  }
  if (state[seq] == ECHOED || state[seq] == LATE) {
    duplicate++;
    return;
  }
  if (state[seq] == LOST) {
    state[seq] = LATE;
    late++;
    return;
  }
  state[seq] = ECHOED;
  echoed++;
  inflight--;
  for (int i = 0; i < window; i++)
    if (slots[i].used && slots[i].seq == seq) {
      slots[i].used = 0;
      break;
    }
}

static void expire(double t, int all) {
  for (int i = 0; i < window; i++) {
    if (!slots[i].used || (!all && t - slots[i].sent_at < LOSS_TIMEOUT)) continue;
    slots[i].used = 0;
    state[slots[i].seq] = LOST;
    lost++;
    inflight--;
  }
}

static void receive(int *fds, struct pollfd *p) {
  static uint8_t in[BATCH][MAX_SIZE + 1];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (int s = 0; s < SOCKETS; s++) {
    if (p[s].revents == 0) continue;
    for (;;) {
      for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = in[i], .iov_len = sizeof(in[i])};
        memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fds[s], msgs, BATCH, MSG_DONTWAIT, NULL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) recv_errors++;
        break;
      }
      for (int i = 0; i < n; i++) {
        // a datagram longer than the buffer is cut short and flagged: never intact
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) corrupt++;
        else on_echo(in[i], msgs[i].msg_len, s);
      }
      if (n < BATCH) break;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: udp_soak PORT SECONDS RATE WINDOW SEED INTERVAL\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double seconds = atof(argv[2]);
  double rate = atof(argv[3]);
  window = atoi(argv[4]);
  seed = strtoull(argv[5], NULL, 10);
  double interval = atof(argv[6]);
  if (window < 1 || window > MAX_WINDOW || rate <= 0 || interval <= 0) {
    fprintf(stderr, "udp_soak: WINDOW must be 1..%d, RATE and INTERVAL positive\n", MAX_WINDOW);
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark that started it
  state_cap = 1 << 20;
  state = calloc(state_cap, 1);
  if (state == NULL) {
    perror("udp_soak: calloc");
    return 1;
  }
  int fds[SOCKETS];
  struct pollfd p[SOCKETS];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  for (int s = 0; s < SOCKETS; s++) {
    fds[s] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int buf = 4 << 20;  // room for a window of the largest datagrams (capped by rmem_max)
    setsockopt(fds[s], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    setsockopt(fds[s], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    if (fds[s] < 0 || connect(fds[s], (struct sockaddr *)&to, sizeof(to)) < 0) {
      perror("udp_soak: socket");
      return 1;
    }
    p[s] = (struct pollfd){.fd = fds[s], .events = POLLIN};
  }
  double start = now(), end = start + seconds, last = start, next_report = start + interval;
  double tokens = 1;
  for (;;) {
    double t = now();
    if (t >= next_report) {
      report(fds, t - start, 0);
      while (next_report <= t) next_report += interval;  // one line after a stall, not several
    }
    int sending = t < end;
    if (!sending && (inflight == 0 || t >= end + LOSS_TIMEOUT)) break;
    if (sending) {
      tokens += (t - last) * rate;
      if (tokens > window) tokens = window;  // no catching up in bursts after a stall
      while (tokens >= 1 && send_one(fds, t)) tokens -= 1;
    }
    last = t;
    poll(p, SOCKETS, 1);
    receive(fds, p);
    expire(now(), 0);
  }
  expire(now(), 1);
  report(fds, now() - start, 1);
  return 0;
}
