// Windowed ICMP echo load generator for bench/tun.ts, run inside the benchmark's namespace.
//   icmp_flood PREFIX HOSTS SECONDS SIZE WINDOW
// Keeps WINDOW echo requests of SIZE data bytes in flight to PREFIX.2 .. PREFIX.(HOSTS+1) (so the
// flows spread over a multi-queue device), checks that every reply carries the identifier, a
// sequence number it sent and the data it sent, and prints one JSON line: sent, received, lost,
// corrupt, pps. A window that sees nothing for 100 ms is counted lost and refilled. Needs root.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t checksum(const uint8_t *b, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(b[i] << 8 | b[i + 1]);
  if (n & 1) s += (uint32_t)b[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

// the data of request `seq` is byte (seq * 31 + i) at offset i: a slice of `pattern`
static uint8_t pattern[256 + 1472];
static const uint8_t *data_of(uint16_t seq) { return pattern + (uint8_t)(seq * 31); }

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: icmp_flood PREFIX HOSTS SECONDS SIZE WINDOW\n");
    return 2;
  }
  const char *prefix = argv[1];
  int hosts = atoi(argv[2]);
  double seconds = atof(argv[3]);
  int size = atoi(argv[4]);
  int window = atoi(argv[5]);
  if (hosts < 1 || hosts > 250 || size < 0 || size > 1472 || window < 1) return 2;
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP);
  if (fd < 0) {
    perror("socket(SOCK_RAW, IPPROTO_ICMP)");
    return 1;
  }
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  struct sockaddr_in to[250];
  for (int h = 0; h < hosts; h++) {
    char text[64];
    snprintf(text, sizeof(text), "%s.%d", prefix, h + 2);
    memset(&to[h], 0, sizeof(to[h]));
    to[h].sin_family = AF_INET;
    if (inet_pton(AF_INET, text, &to[h].sin_addr) != 1) return 2;
  }
  for (size_t i = 0; i < sizeof(pattern); i++) pattern[i] = (uint8_t)i;
  static uint8_t outstanding[65536];  // 1 while request `seq` waits for its reply
  uint16_t id = (uint16_t)getpid();
  uint8_t out[8 + 1472], in[65536];
  uint64_t sent = 0, received = 0, lost = 0, corrupt = 0;
  long inflight = 0;
  uint16_t seq = 0;
  double start = now(), end = start + seconds, last_rx = start;
  while (now() < end) {
    while (inflight < window) {
      struct icmphdr *h = (struct icmphdr *)out;
      memset(h, 0, sizeof(*h));
      h->type = ICMP_ECHO;
      h->un.echo.id = htons(id);
      h->un.echo.sequence = htons(seq);
      memcpy(out + 8, data_of(seq), (size_t)size);
      h->checksum = htons(checksum(out, 8 + (size_t)size));
      if (sendto(fd, out, 8 + (size_t)size, 0, (struct sockaddr *)&to[seq % hosts],
                 sizeof(to[0])) < 0) {
        break;  // the device's queue is full: wait for replies
      }
      outstanding[seq] = 1;
      seq++;
      sent++;
      inflight++;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 10);
    for (;;) {
      ssize_t n = recv(fd, in, sizeof(in), 0);
      if (n < 0) break;
      struct iphdr *ip = (struct iphdr *)in;
      size_t ihl = (size_t)ip->ihl * 4;
      if ((size_t)n < ihl + 8) continue;
      struct icmphdr *h = (struct icmphdr *)(in + ihl);
      if (h->type != ICMP_ECHOREPLY || ntohs(h->un.echo.id) != id) continue;
      uint16_t s = ntohs(h->un.echo.sequence);
      if (!outstanding[s]) continue;  // late (already counted lost) or duplicated
      outstanding[s] = 0;
      int ok = (size_t)n == ihl + 8 + (size_t)size && checksum(in + ihl, (size_t)n - ihl) == 0;
      ok = ok && memcmp(in + ihl + 8, data_of(s), (size_t)size) == 0;
      if (!ok) corrupt++;
      received++;
      inflight--;
      last_rx = now();
    }
    if (inflight > 0 && now() - last_rx > 0.1) {
      lost += (uint64_t)inflight;
      inflight = 0;
      memset(outstanding, 0, sizeof(outstanding));
      last_rx = now();
    }
  }
  double elapsed = now() - start;
  printf("{\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"corrupt\":%llu,\"pps\":%.0f}\n",
         (unsigned long long)sent, (unsigned long long)received, (unsigned long long)lost,
         (unsigned long long)corrupt, received / elapsed);
  return 0;
}
