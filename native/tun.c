// bun-sansio native shim, TUN/TAP part: create a device (or one queue of a multi-queue device),
// configure its IPv4 address, netmask and MTU, bring it up or down. Errors come back as -errno;
// the JS side turns them into readable messages. A device is destroyed when its last queue fd is
// closed (the devices made here are never persistent).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ledger.h"

#define EXPORT __attribute__((visibility("default")))

// Opens /dev/net/tun and attaches it to device `name` (created if missing): TUN (layer 3) or TAP
// (layer 2), always without the packet-information header; with `multi_queue`, as one more queue
// of that device. Writes the device's real name (at most IFNAMSIZ bytes with the NUL) to
// `out_name`. Returns the non-blocking queue fd, or -errno: ENOENT no /dev/net/tun, EPERM no
// CAP_NET_ADMIN, EBUSY the name is taken by a device that cannot take this queue, EINVAL a bad
// name or a device of another kind.
EXPORT int32_t sio_tun_open(const char *name, int32_t tap, int32_t multi_queue, char *out_name) {
  if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | (multi_queue ? IFF_MULTI_QUEUE : 0);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
  out_name[IFNAMSIZ - 1] = 0;
  sio_ledger_track_fd(fd);
  return fd;
}

static int with_ifreq(const char *name, struct ifreq *ifr, int *sock) {
  if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
  memset(ifr, 0, sizeof(*ifr));
  strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
  *sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  return *sock < 0 ? -errno : 0;
}

static int finish(int sock, int r) {
  int e = r < 0 ? errno : 0;
  close(sock);
  return r < 0 ? -e : 0;
}

static void set_in(struct sockaddr *sa, uint32_t addr_be) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = addr_be;
  memcpy(sa, &sin, sizeof(sin));
}

// Sets the device's IPv4 address and prefix length (address in network byte order).
EXPORT int32_t sio_if_set_ipv4(const char *name, uint32_t addr_be, int32_t prefix) {
  if (prefix < 0 || prefix > 32) return -EINVAL;
  struct ifreq ifr;
  int sock;
  int r = with_ifreq(name, &ifr, &sock);
  if (r < 0) return r;
  set_in(&ifr.ifr_addr, addr_be);
  if (ioctl(sock, SIOCSIFADDR, &ifr) < 0) return finish(sock, -1);
  uint32_t mask = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
  set_in(&ifr.ifr_netmask, mask);
  return finish(sock, ioctl(sock, SIOCSIFNETMASK, &ifr));
}

// Sets the device's MTU.
EXPORT int32_t sio_if_set_mtu(const char *name, int32_t mtu) {
  struct ifreq ifr;
  int sock;
  int r = with_ifreq(name, &ifr, &sock);
  if (r < 0) return r;
  ifr.ifr_mtu = mtu;
  return finish(sock, ioctl(sock, SIOCSIFMTU, &ifr));
}

// Brings the device up (up != 0) or down.
EXPORT int32_t sio_if_set_up(const char *name, int32_t up) {
  struct ifreq ifr;
  int sock;
  int r = with_ifreq(name, &ifr, &sock);
  if (r < 0) return r;
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) return finish(sock, -1);
  if (up)
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  else
    ifr.ifr_flags &= ~IFF_UP;
  return finish(sock, ioctl(sock, SIOCSIFFLAGS, &ifr));
}

// The device's interface index, or -errno (ENODEV: no such device).
EXPORT int32_t sio_if_index(const char *name) {
  struct ifreq ifr;
  int sock;
  int r = with_ifreq(name, &ifr, &sock);
  if (r < 0) return r;
  if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0) return finish(sock, -1);
  close(sock);
  return ifr.ifr_ifindex;
}

// Checks that `fd` is a queue attached to a TUN/TAP device that carries bare packets (IFF_NO_PI,
// no virtio-net header), and makes it non-blocking. Returns IFF_TUN or IFF_TAP, or -errno: EBADF
// not an open fd, ENOTTY not a TUN/TAP fd, EBADFD a TUN/TAP fd not attached to a device (or
// detached from it), EPROTOTYPE a queue with a packet-information or virtio-net header.
EXPORT int32_t sio_tun_check(int32_t fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return -errno;
  if (!(ifr.ifr_flags & IFF_NO_PI) || (ifr.ifr_flags & IFF_VNET_HDR)) return -EPROTOTYPE;
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return ifr.ifr_flags & (IFF_TUN | IFF_TAP);
}

// Reads up to `n` packets from a non-blocking TUN/TAP queue into `bufs` (n buffers of `buf_size`
// bytes); `sizes[i]` gets each packet's length (the kernel cuts a longer packet to `buf_size`
// without saying so).
// Returns the count, 0 when nothing is waiting, or -errno when the first read fails.
EXPORT int32_t sio_tun_read(int32_t fd, uint8_t *bufs, uint32_t buf_size, uint32_t n,
                            int32_t *sizes) {
  uint32_t i = 0;
  while (i < n) {
    ssize_t r = read(fd, bufs + (size_t)i * buf_size, buf_size);
    if (r >= 0) {
      sizes[i++] = (int32_t)r;
    } else if (errno != EINTR) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || i > 0) break;
      return -errno;
    }
  }
  return (int32_t)i;
}

// Writes `n` packets into a TUN/TAP queue, one write each. `entries` holds n records of 48 bytes
// (the send batch layout of sio_sendmmsg: data pointer u64, length u32, the rest unused). Returns
// how many were written before one would block, or -errno when the first one fails otherwise.
EXPORT int32_t sio_tun_write(int32_t fd, const uint8_t *entries, uint32_t n) {
  uint32_t i = 0;
  while (i < n) {
    uint64_t at;
    uint32_t len;
    memcpy(&at, entries + (size_t)i * 48, 8);
    memcpy(&len, entries + (size_t)i * 48 + 8, 4);
    if (write(fd, (const void *)(uintptr_t)at, len) >= 0) {
      i++;
    } else if (errno != EINTR) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || i > 0) break;
      return -errno;
    }
  }
  return (int32_t)i;
}

// What the kernel dropped on the device a TUN/TAP queue `fd` is attached to: out[0] gets the
// device's interface index, out[1] its tx_dropped counter (device-wide, since its creation: above
// all packets routed into the device while the queue they were sent to was full). Read through
// rtnetlink in the caller's network namespace. Returns 0, or -errno (EBADFD: the queue is not
// attached to a device any more).
EXPORT int32_t sio_tun_drops(int32_t fd, uint64_t *out) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return -errno;
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return -errno;
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    char attrs[RTA_SPACE(IFNAMSIZ)];
  } req;
  memset(&req, 0, sizeof(req));
  size_t name_len = strnlen(ifr.ifr_name, IFNAMSIZ - 1) + 1;
  struct rtattr *name = (struct rtattr *)req.attrs;
  name->rta_type = IFLA_IFNAME;
  name->rta_len = RTA_LENGTH(name_len);
  memcpy(RTA_DATA(name), ifr.ifr_name, name_len);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi)) + RTA_SPACE(name_len);
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.ifi.ifi_family = AF_UNSPEC;
  char reply[16384];
  int r = -EIO;
  if (send(sock, &req, req.nh.nlmsg_len, 0) < 0) {
    r = -errno;
  } else {
    ssize_t n = recv(sock, reply, sizeof(reply), 0);
    struct nlmsghdr *nh = (struct nlmsghdr *)reply;
    if (n < 0) {
      r = -errno;
    } else if (!NLMSG_OK(nh, (size_t)n)) {
      r = -EIO;
    } else if (nh->nlmsg_type == NLMSG_ERROR) {
      r = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
    } else if (nh->nlmsg_type == RTM_NEWLINK) {
      struct ifinfomsg *ifi = NLMSG_DATA(nh);
      int left = (int)IFLA_PAYLOAD(nh);
      r = -EOPNOTSUPP;
      for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        // older kernels send a shorter struct: only the fields up to tx_dropped are needed
        size_t need = offsetof(struct rtnl_link_stats64, tx_dropped) + sizeof(uint64_t);
        if (a->rta_type == IFLA_STATS64 && RTA_PAYLOAD(a) >= need) {
          memcpy(&out[1], (char *)RTA_DATA(a) + offsetof(struct rtnl_link_stats64, tx_dropped),
                 sizeof(uint64_t));
          out[0] = (uint64_t)ifi->ifi_index;
          r = 0;
        }
      }
    }
  }
  close(sock);
  return r;
}
