// Windowed UDP load generator for bench/udp-echo.ts.
//   udp_load PORT SECONDS SIZE WINDOW
// Keeps WINDOW datagrams of SIZE bytes in flight against 127.0.0.1:PORT, checks that every echo
// carries a sequence number it sent, and prints one JSON line: received, lost, corrupt, pps.
// A window that sees nothing for 100 ms is counted lost and refilled.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: udp_load PORT SECONDS SIZE WINDOW\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double seconds = atof(argv[2]);
  int size = atoi(argv[3]);
  int window = atoi(argv[4]);
  if (size < 8) size = 8;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
    perror("connect");
    return 1;
  }
  static char out[BATCH][65536], in[BATCH][65536];
  struct mmsghdr smsg[BATCH], rmsg[BATCH];
  struct iovec siov[BATCH], riov[BATCH];
  uint64_t next_seq = 0, received = 0, lost = 0, corrupt = 0;
  long inflight = 0;
  double start = now(), end = start + seconds, last_rx = start;
  while (now() < end) {
    int want = window - inflight;
    while (want > 0) {
      int n = want > BATCH ? BATCH : want;
      for (int i = 0; i < n; i++) {
        uint64_t seq = next_seq++;
        memcpy(out[i], &seq, 8);
        memset(out[i] + 8, (int)(seq & 0xff), size - 8);
        siov[i] = (struct iovec){.iov_base = out[i], .iov_len = size};
        memset(&smsg[i].msg_hdr, 0, sizeof(smsg[i].msg_hdr));
        smsg[i].msg_hdr.msg_iov = &siov[i];
        smsg[i].msg_hdr.msg_iovlen = 1;
      }
      int r = sendmmsg(fd, smsg, n, 0);
      if (r <= 0) break;
      inflight += r;
      want -= r;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 10);
    for (;;) {
      for (int i = 0; i < BATCH; i++) {
        riov[i] = (struct iovec){.iov_base = in[i], .iov_len = sizeof(in[i])};
        memset(&rmsg[i].msg_hdr, 0, sizeof(rmsg[i].msg_hdr));
        rmsg[i].msg_hdr.msg_iov = &riov[i];
        rmsg[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0) break;
      for (int i = 0; i < n; i++) {
        uint64_t seq;
        memcpy(&seq, in[i], 8);
        if ((int)rmsg[i].msg_len != size || seq >= next_seq || (unsigned char)in[i][size - 1] != (seq & 0xff)) corrupt++;
        received++;
      }
      inflight -= n;
      last_rx = now();
    }
    if (inflight > 0 && now() - last_rx > 0.1) {
      lost += inflight;
      inflight = 0;
      last_rx = now();
    }
  }
  double elapsed = now() - start;
  printf("{\"received\":%llu,\"lost\":%llu,\"corrupt\":%llu,\"pps\":%.0f}\n", (unsigned long long)received,
         (unsigned long long)(lost + inflight), (unsigned long long)corrupt, received / elapsed);
  return 0;
}
