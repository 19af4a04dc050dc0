// Reference TUN ping responder in plain C for bench/tun.ts: one queue, blocking read() and
// write() of each packet, the same checks and in-place reply as examples/ping-responder.ts
// (IPv4 header checksum, ICMP checksum, echo request to a host of the subnet other than SELF).
//   tun_ping NAME SELF PREFIXLEN      (the bench configures the address and brings it up)
// Prints "ready" once the device exists.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static uint32_t sum(const uint8_t *b, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(b[i] << 8 | b[i + 1]);
  if (n & 1) s += (uint32_t)b[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tun_ping NAME SELF PREFIXLEN\n");
    return 2;
  }
  struct in_addr self_addr;
  if (inet_pton(AF_INET, argv[2], &self_addr) != 1) return 2;
  uint32_t self = ntohl(self_addr.s_addr);
  int prefix = atoi(argv[3]);
  uint32_t size = 1u << (32 - prefix), network = self & ~(size - 1), broadcast = network + size - 1;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) {
    perror("tun");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  static uint8_t p[65536];
  for (;;) {
    ssize_t n = read(fd, p, sizeof(p));
    if (n < 0 && errno != EINTR) {
      perror("read");  // the device is gone
      return 1;
    }
    if (n < 20 || p[0] >> 4 != 4) continue;
    size_t ihl = (size_t)(p[0] & 15) * 4, total = (size_t)(p[2] << 8 | p[3]);
    if (ihl < 20 || total < ihl + 8 || total > (size_t)n || sum(p, ihl, 0) != 0xffff) continue;
    if ((p[6] << 8 | p[7]) & 0x3fff || p[9] != 1) continue;
    uint32_t dst = (uint32_t)p[16] << 24 | p[17] << 16 | p[18] << 8 | p[19];
    if (dst <= network || dst >= broadcast || dst == self) continue;
    if (sum(p + ihl, total - ihl, 0) != 0xffff || p[ihl] != 8 || p[ihl + 1] != 0) continue;
    uint8_t t[4];
    memcpy(t, p + 12, 4);
    memcpy(p + 12, p + 16, 4);
    memcpy(p + 16, t, 4);
    p[8] = 64;
    p[10] = p[11] = 0;
    uint16_t c = (uint16_t)~sum(p, ihl, 0);
    p[10] = c >> 8;
    p[11] = c & 0xff;
    p[ihl] = 0;
    p[ihl + 2] = p[ihl + 3] = 0;
    c = (uint16_t)~sum(p + ihl, total - ihl, 0);
    p[ihl + 2] = c >> 8;
    p[ihl + 3] = c & 0xff;
    if (write(fd, p, total) < 0) perror("write");
  }
}
