// Test tool: sends raw packets out of a network interface through an AF_PACKET socket, so that
// they reach whoever reads the device (a TUN queue, for instance) exactly as given, malformed or
// not. Usage: packet-inject IFNAME HEX [HEX...]   (one packet per hex string). Needs CAP_NET_RAW.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: packet-inject IFNAME HEX [HEX...]\n");
    return 2;
  }
  unsigned index = if_nametoindex(argv[1]);
  if (index == 0) {
    perror(argv[1]);
    return 1;
  }
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
  if (fd < 0) {
    perror("socket(AF_PACKET)");
    return 1;
  }
  struct sockaddr_ll to;
  memset(&to, 0, sizeof(to));
  to.sll_family = AF_PACKET;
  to.sll_ifindex = (int)index;
  to.sll_protocol = htons(ETH_P_IP);
  static unsigned char packet[65536];
  for (int i = 2; i < argc; i++) {
    size_t n = strlen(argv[i]) / 2;
    if (n == 0 || n > sizeof(packet) || strlen(argv[i]) % 2 != 0) {
      fprintf(stderr, "packet %d: 1 to %zu bytes of hex (an even number of digits)\n", i - 1,
              sizeof(packet));
      return 2;
    }
    for (size_t j = 0; j < n; j++) {
      int hi = nibble(argv[i][2 * j]), lo = nibble(argv[i][2 * j + 1]);
      if (hi < 0 || lo < 0) {
        fprintf(stderr, "packet %d: not hex\n", i - 1);
        return 2;
      }
      packet[j] = (unsigned char)(hi << 4 | lo);
    }
    if (sendto(fd, packet, n, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)n) {
      perror("sendto");
      return 1;
    }
  }
  close(fd);
  return 0;
}
