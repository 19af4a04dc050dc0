// bun-sansio native shim, sockets and threads: UDP sockets (created and bound here, so errors
// come back as -errno), closing what the shim opened, fd counts, the calling thread's CPU and CPU
// time, and the eventfds that wake a backend from another thread.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

// Creates a non-blocking UDP socket bound to `bind_addr`; writes the real bound address (port 0
// resolved) to `bound`. Returns the fd, or -errno.
EXPORT int32_t sio_udp_bind(const uint8_t *bind_addr, int32_t reuse_addr, int32_t reuse_port,
                            int32_t rcvbuf, int32_t sndbuf, uint8_t *bound) {
  sa_family_t family;
  memcpy(&family, bind_addr, sizeof(family));
  if (family != AF_INET && family != AF_INET6) return -EAFNOSUPPORT;
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (reuse_addr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) goto fail;
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) goto fail;
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) goto fail;
  if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0) goto fail;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  memcpy(&ss, bind_addr, addr_len(bind_addr));
  if (bind(fd, (struct sockaddr *)&ss, addr_len(bind_addr)) < 0) goto fail;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) goto fail;
  memset(bound, 0, SIO_ADDR_BYTES);
  memcpy(bound, &ss, len < SIO_ADDR_BYTES ? len : SIO_ADDR_BYTES);
  sio_ledger_track_fd(fd);
  return fd;
fail: {
  int e = errno;
  close(fd);
  return -e;
}
}

// Closes an fd this shim opened (and forgets it in the ledger first).
EXPORT int32_t sio_close(int32_t fd) {
  sio_ledger_untrack_fd(fd);
  return close(fd) < 0 ? -errno : 0;
}

// Datagrams the kernel dropped on socket `fd` instead of queueing them for reading (receive
// queue full, and the socket's other receive-side drops): SO_MEMINFO's SK_MEMINFO_DROPS, counted
// from the socket's creation (a 32-bit kernel counter). Returns the count, or -errno.
EXPORT int64_t sio_udp_drops(int32_t fd) {
  uint32_t info[SK_MEMINFO_VARS];
  socklen_t len = sizeof(info);
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) < 0) return -errno;
  if (len <= SK_MEMINFO_DROPS * sizeof(uint32_t)) return -EOPNOTSUPP;
  return info[SK_MEMINFO_DROPS];
}

// Number of open file descriptors of this process (for leak checks).
// The hash of the ABI header this shim was built from (native/build.ts passes it): the loader
// refuses a shim built for another version of the TypeScript side.
EXPORT uint32_t sio_abi_hash(void) { return SIO_ABI_HASH; }

EXPORT int32_t sio_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -errno;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(d);
  return n - 1;  // the directory stream's own fd
}

// Pins the calling thread to one CPU. Returns 0 or -errno (EINVAL: no such CPU in this process's
// allowed set).
EXPORT int32_t sio_pin_cpu(int32_t cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

// The CPU the calling thread is running on, or -errno.
EXPORT int32_t sio_current_cpu(void) {
  int cpu = sched_getcpu();
  return cpu < 0 ? -errno : cpu;
}

// CPU time consumed by the calling thread (user + system), in nanoseconds, or -errno.
EXPORT int64_t sio_thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) return -errno;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

EXPORT int32_t sio_eventfd(void) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return -errno;
  sio_ledger_track_fd(fd);
  return fd;
}

// Wakes a backend parked on `efd` (any thread).
EXPORT int32_t sio_wake(int32_t efd) {
  uint64_t one = 1;
  return write(efd, &one, sizeof(one)) < 0 ? -errno : 0;
}

// Drains an eventfd (after a wake-up). Returns 0 or -errno.
EXPORT int32_t sio_eventfd_drain(int32_t efd) {
  uint64_t v;
  return read(efd, &v, sizeof(v)) < 0 && errno != EAGAIN ? -errno : 0;
}
