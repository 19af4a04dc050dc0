// bun-sansio native shim, io_uring part (through liburing, linked statically). The JS side talks
// to a ring through memory this shim allocates (never GC-managed memory):
//   - a command array JS fills and hands over with sio_uring_enter(n, timeout);
//   - a completion array the shim fills from the CQ (one FFI call per loop iteration);
//   - a provided-buffer pool for receives, and a pool of send buffers (msghdr + address + payload).
// Opcodes and layouts come from sansio_abi.h (src/sys/abi.ts); the structs below are checked
// against them.
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/udp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#ifndef IORING_OP_READ_MULTISHOT
#define IORING_OP_READ_MULTISHOT 49  // kernel 6.7; liburing 2.3's header predates it
#endif

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

typedef struct {  // SIO_CMD_BYTES; opcodes and their fields: src/sys/abi.ts (Op)
  uint8_t op;
  uint8_t flag;    // SIO_OP_READ: 1 for a multishot read
  uint16_t count;  // SIO_OP_SEND_GSO: number of iovecs
  int32_t fd;
  uint64_t user_data;
  uint64_t addr;
  uint32_t len;
  uint32_t buf;  // send buffer (sends), receive buffer (SIO_OP_RECYCLE)
  uint8_t dst[SIO_ADDR_BYTES];  // raw sockaddr
  uint32_t dst_len;
} sio_cmd_t;
_Static_assert(sizeof(sio_cmd_t) == SIO_CMD_BYTES, "sio_cmd_t size");
_Static_assert(offsetof(sio_cmd_t, op) == SIO_CMD_OP, "sio_cmd_t.op");
_Static_assert(offsetof(sio_cmd_t, flag) == SIO_CMD_FLAG, "sio_cmd_t.flag");
_Static_assert(offsetof(sio_cmd_t, count) == SIO_CMD_COUNT, "sio_cmd_t.count");
_Static_assert(offsetof(sio_cmd_t, fd) == SIO_CMD_FD, "sio_cmd_t.fd");
_Static_assert(offsetof(sio_cmd_t, user_data) == SIO_CMD_USER_DATA, "sio_cmd_t.user_data");
_Static_assert(offsetof(sio_cmd_t, addr) == SIO_CMD_ADDR, "sio_cmd_t.addr");
_Static_assert(offsetof(sio_cmd_t, len) == SIO_CMD_LEN, "sio_cmd_t.len");
_Static_assert(offsetof(sio_cmd_t, buf) == SIO_CMD_BUF, "sio_cmd_t.buf");
_Static_assert(offsetof(sio_cmd_t, dst) == SIO_CMD_DST, "sio_cmd_t.dst");
_Static_assert(offsetof(sio_cmd_t, dst_len) == SIO_CMD_DST_LEN, "sio_cmd_t.dst_len");

typedef struct {  // SIO_CQE_BYTES
  uint64_t user_data;
  int32_t res;
  uint32_t flags;
} sio_cqe_t;
_Static_assert(sizeof(sio_cqe_t) == SIO_CQE_BYTES, "sio_cqe_t size");
_Static_assert(offsetof(sio_cqe_t, user_data) == SIO_CQE_USER_DATA, "sio_cqe_t.user_data");
_Static_assert(offsetof(sio_cqe_t, res) == SIO_CQE_RES, "sio_cqe_t.res");
_Static_assert(offsetof(sio_cqe_t, flags) == SIO_CQE_FLAGS, "sio_cqe_t.flags");


typedef struct {
  struct io_uring ring;
  uint32_t setup_flags;
  // receive buffers (provided-buffer ring, group id 0)
  struct io_uring_buf_ring *br;
  size_t br_bytes;
  uint8_t *bufs;
  size_t bufs_bytes;
  uint32_t buf_count, buf_size;
  struct msghdr recv_template;
  // send buffers: `small_count` of `small_size` bytes, then `large_count` of `large_size`
  uint8_t *sends;
  size_t sends_bytes;
  struct iovec *iovs;  // SIO_GSO_MAX iovecs per send buffer, for GSO sends headed by that buffer
  size_t iovs_bytes;
  uint32_t small_count, small_size, large_count, large_size;
  // command and completion arrays
  sio_cmd_t *cmds;
  uint32_t cmd_cap;
  sio_cqe_t *cqes;
  uint32_t cqe_cap;
  int eventfd;
  uint64_t eventfd_value;
  uint64_t overflow;  // completions that did not fit: left in the CQ for the next call
  sio_cqe_t *failed;  // commands that could not be prepared, reported by the next enter
  uint32_t failed_count;
  int read_multishot;  // the kernel has IORING_OP_READ_MULTISHOT
  // TCP (sio_uring_tcp_init): stream receive buffers (provided-buffer ring, group 1), one
  // SIO_TCP_SLOT_BYTES area per connection slot (sendmsg header, connect address and timeout,
  // iovecs), and the send memory JS cuts into blocks
  struct io_uring_buf_ring *sbr;
  size_t sbr_bytes;
  uint8_t *sbufs;
  size_t sbufs_bytes;
  uint32_t sbuf_count, sbuf_size;
  int sbuf_inc;  // the stream buffers are incrementally consumed (IOU_PBUF_RING_INC)
  uint8_t *slots;
  size_t slots_bytes;
  uint32_t slot_count;
  uint8_t *tx;
  size_t tx_bytes;
} sio_uring_t;

// One connection slot's area: what the kernel reads when a send or connect is submitted.
typedef struct {
  struct msghdr msg;
  uint8_t pad0[64 - sizeof(struct msghdr)];
  uint8_t addr[SIO_ADDR_BYTES];
  uint8_t pad1[32 - SIO_ADDR_BYTES];
  struct __kernel_timespec timeout;
  uint8_t pad2[32 - sizeof(struct __kernel_timespec)];
  struct iovec iov[SIO_TCP_IOV_MAX];
} sio_slot_t;
_Static_assert(sizeof(sio_slot_t) == SIO_TCP_SLOT_BYTES, "sio_slot_t size");
_Static_assert(offsetof(sio_slot_t, iov) == SIO_TCP_SLOT_IOV, "sio_slot_t.iov");

static void *map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void unmap(void *p, size_t bytes) {
  if (p != NULL) munmap(p, bytes);
}

static uint8_t *send_base(sio_uring_t *u, uint32_t buf) {
  if (buf < u->small_count) return u->sends + (size_t)buf * u->small_size;
  buf -= u->small_count;
  return u->sends + (size_t)u->small_count * u->small_size + (size_t)buf * u->large_size;
}

// struct io_uring_buf_reg as kernels with incrementally consumed buffer rings know it (liburing
// 2.3's header predates `flags` and `min_left`).
struct sio_buf_reg {
  uint64_t ring_addr;
  uint32_t ring_entries;
  uint16_t bgid;
  uint16_t flags;     // IOU_PBUF_RING_INC (kernel 6.12)
  uint32_t min_left;  // with IOU_PBUF_RING_INC: move to the next buffer below this many bytes left
  uint32_t resv[5];
};
_Static_assert(sizeof(struct sio_buf_reg) == sizeof(struct io_uring_buf_reg), "buf_reg layout");
#define SIO_PBUF_RING_INC 2

// Registers the provided-buffer ring at `br` (`entries` buffers) as group `bgid`. With
// `min_left` > 0 its buffers are incrementally consumed: the kernel puts each datagram or packet
// right after the previous one in the same buffer (IORING_CQE_F_BUF_MORE says the buffer goes
// on), and retires a buffer once fewer than `min_left` bytes are left in it, so anything of up to
// `min_left` bytes lands whole. Kernels without `min_left` refuse that with -EINVAL: they check
// that the reserved bytes it occupies are zero.
// (`inc` without `min_left`: incrementally consumed down to the last byte, for streams.)
static int register_recv_ring(struct io_uring *ring, void *br, uint32_t entries, uint16_t bgid,
                              int inc, uint32_t min_left) {
  struct sio_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)br;
  reg.ring_entries = entries;
  reg.bgid = bgid;
  reg.flags = inc || min_left > 0 ? SIO_PBUF_RING_INC : 0;
  reg.min_left = min_left;
  return io_uring_register_buf_ring(ring, (struct io_uring_buf_reg *)&reg, 0);
}

// Feature probe: bit 0 io_uring usable, 1 SINGLE_ISSUER, 2 DEFER_TASKRUN, 3 COOP_TASKRUN,
// 4 multishot recvmsg, 5 provided-buffer rings, 6 multishot read, 7 incrementally consumed
// buffer rings with a minimum left (see register_recv_ring). Returns -errno when io_uring cannot
// be set up.
EXPORT int32_t sio_uring_probe(void) {
  struct io_uring ring;
  int r = io_uring_queue_init(4, &ring, 0);
  if (r < 0) return r;
  int32_t bits = 1;
  struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
  if (probe != NULL) {
    if (io_uring_opcode_supported(probe, IORING_OP_RECVMSG)) bits |= 1 << SIO_PROBE_MULTISHOT_RECVMSG;
    if (io_uring_opcode_supported(probe, IORING_OP_READ_MULTISHOT)) bits |= 1 << SIO_PROBE_MULTISHOT_READ;
    io_uring_free_probe(probe);
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  size_t bytes = 4096;
  void *mem = map(bytes);
  if (mem != NULL) {
    reg.ring_addr = (uint64_t)(uintptr_t)mem;
    reg.ring_entries = 1;
    reg.bgid = 0;
    if (io_uring_register_buf_ring(&ring, &reg, 0) == 0) {
      bits |= 1 << SIO_PROBE_BUFFER_RINGS;
      io_uring_unregister_buf_ring(&ring, 0);
    }
    if (register_recv_ring(&ring, mem, 1, 1, 1, 256) == 0) {
      bits |= 1 << SIO_PROBE_PACKED_BUFFERS;
      io_uring_unregister_buf_ring(&ring, 1);
    }
    unmap(mem, bytes);
  }
  io_uring_queue_exit(&ring);
  static const uint32_t flags[] = {IORING_SETUP_SINGLE_ISSUER,
                                   IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                   IORING_SETUP_COOP_TASKRUN};
  static const int bit[] = {SIO_PROBE_SINGLE_ISSUER, SIO_PROBE_DEFER_TASKRUN,
                             SIO_PROBE_COOP_TASKRUN};
  for (int i = 0; i < 3; i++) {
    if (io_uring_queue_init(4, &ring, flags[i]) == 0) {
      bits |= 1 << bit[i];
      io_uring_queue_exit(&ring);
    }
  }
  return bits;
}

EXPORT void sio_uring_free(sio_uring_t *u);

// Creates a ring with `entries` SQEs, `buf_count` receive buffers of `buf_size` bytes (buf_count
// a power of two), and send buffers. Uses SINGLE_ISSUER + COOP_TASKRUN, or COOP_TASKRUN, where the
// kernel has them (see below). On failure returns NULL and writes -errno to `err`.
EXPORT sio_uring_t *sio_uring_new(uint32_t entries, uint32_t buf_count, uint32_t buf_size,
                                  uint32_t small_count, uint32_t small_size, uint32_t large_count,
                                  uint32_t large_size, uint32_t cmd_cap, int32_t *err) {
  if (buf_count == 0 || (buf_count & (buf_count - 1)) != 0 || buf_count > 32768 ||
      buf_size < 256 || small_size <= SIO_SEND_HEADER || large_size <= SIO_SEND_HEADER) {
    *err = -EINVAL;
    return NULL;
  }
  sio_uring_t *u = calloc(1, sizeof(*u));
  if (u == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  u->eventfd = -1;
  // The completion queue holds everything that can be outstanding at once: a completion per
  // receive buffer (multishot receives stop when buffers run out), per send buffer, and per
  // submission entry (cancels, the wake-up read). So it never overflows, and a submit never
  // fails with EBUSY on an overflowed queue.
  uint32_t cq = 64;
  while (cq < buf_count + small_count + large_count + 2 * entries) cq <<= 1;
  // SINGLE_ISSUER + COOP_TASKRUN rather than DEFER_TASKRUN: with deferred task work a multishot
  // receive only makes progress inside io_uring_enter, and a 100,000-packet burst lost 74% of its
  // packets to socket-buffer overflow, against 2.8% here (test/backend/conformance.test.ts).
  static const uint32_t tries[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
                                   IORING_SETUP_COOP_TASKRUN, 0};
  int r = -EINVAL;
  for (int i = 0; i < 3; i++) {
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = tries[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = cq;
    r = io_uring_queue_init_params(entries, &u->ring, &p);
    if (r == 0) {
      u->setup_flags = tries[i];
      break;
    }
  }
  if (r < 0) {
    free(u);
    *err = r;
    return NULL;
  }
  u->buf_count = buf_count;
  u->buf_size = buf_size;
  u->br_bytes = (size_t)buf_count * sizeof(struct io_uring_buf);
  u->br_bytes = (u->br_bytes + 4095) & ~(size_t)4095;
  u->bufs_bytes = (size_t)buf_count * buf_size;
  u->small_count = small_count;
  u->small_size = small_size;
  u->large_count = large_count;
  u->large_size = large_size;
  u->sends_bytes = (size_t)small_count * small_size + (size_t)large_count * large_size;
  u->cmd_cap = cmd_cap;
  u->cqe_cap = cq;
  u->br = map(u->br_bytes);
  u->bufs = map(u->bufs_bytes);
  u->sends = u->sends_bytes ? map(u->sends_bytes) : NULL;
  u->iovs_bytes = (size_t)(small_count + large_count) * SIO_GSO_MAX * sizeof(struct iovec);
  u->iovs = u->iovs_bytes ? map(u->iovs_bytes) : NULL;
  u->cmds = map(sizeof(sio_cmd_t) * cmd_cap);
  u->cqes = map(sizeof(sio_cqe_t) * u->cqe_cap);
  u->failed = map(sizeof(sio_cqe_t) * u->cqe_cap);
  if (u->br == NULL || u->bufs == NULL || (u->sends_bytes && u->sends == NULL) ||
      (u->iovs_bytes && u->iovs == NULL) || u->cmds == NULL ||
      u->cqes == NULL || u->failed == NULL) {
    sio_uring_free(u);
    *err = -ENOMEM;
    return NULL;
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)u->br;
  reg.ring_entries = buf_count;
  reg.bgid = 0;
  r = io_uring_register_buf_ring(&u->ring, &reg, 0);
  if (r < 0) {
    u->br_bytes = u->br_bytes;  // keep for unmap
    sio_uring_free(u);
    *err = r;
    return NULL;
  }
  io_uring_buf_ring_init(u->br);
  int mask = io_uring_buf_ring_mask(buf_count);
  for (uint32_t i = 0; i < buf_count; i++) {
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * buf_size, buf_size, i, mask, i);
  }
  io_uring_buf_ring_advance(u->br, buf_count);
  struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
  if (probe != NULL) {
    u->read_multishot = io_uring_opcode_supported(probe, IORING_OP_READ_MULTISHOT);
    io_uring_free_probe(probe);
  }
  memset(&u->recv_template, 0, sizeof(u->recv_template));
  u->recv_template.msg_namelen = sizeof(struct sockaddr_in6);
  u->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (u->eventfd < 0) {
    *err = -errno;
    sio_uring_free(u);
    return NULL;
  }
  *err = 0;
  sio_ledger_track_uring(u, u->br_bytes + u->bufs_bytes + u->sends_bytes + u->iovs_bytes +
                                sizeof(sio_cmd_t) * cmd_cap + 2 * sizeof(sio_cqe_t) * u->cqe_cap);
  return u;
}

EXPORT void sio_uring_free(sio_uring_t *u) {
  if (u == NULL) return;
  sio_ledger_untrack_uring(u);
  if (u->ring.ring_fd > 0) io_uring_queue_exit(&u->ring);
  unmap(u->br, u->br_bytes);
  unmap(u->bufs, u->bufs_bytes);
  unmap(u->sends, u->sends_bytes);
  unmap(u->iovs, u->iovs_bytes);
  unmap(u->cmds, sizeof(sio_cmd_t) * u->cmd_cap);
  unmap(u->cqes, sizeof(sio_cqe_t) * u->cqe_cap);
  unmap(u->failed, sizeof(sio_cqe_t) * u->cqe_cap);
  unmap(u->sbr, u->sbr_bytes);
  unmap(u->sbufs, u->sbufs_bytes);
  unmap(u->slots, u->slots_bytes);
  unmap(u->tx, u->tx_bytes);
  if (u->eventfd >= 0) close(u->eventfd);
  free(u);
}

// Makes the receive buffers of a new ring incrementally consumed with `min_left` (see
// register_recv_ring), before anything is received: one buffer then holds many datagrams or
// packets. The ring's buffers stay where they are (the kernel reads them from the ring memory
// again). Returns 0, or -errno (EINVAL: the kernel lacks it, or `min_left` is larger than a
// buffer), the ring then keeping one datagram per buffer.
EXPORT int32_t sio_uring_pack_recv(sio_uring_t *u, uint32_t min_left) {
  if (min_left == 0 || min_left > u->buf_size) return -EINVAL;
  int r = io_uring_unregister_buf_ring(&u->ring, 0);
  if (r < 0) return r;
  r = register_recv_ring(&u->ring, u->br, u->buf_count, 0, 1, min_left);
  if (r < 0) register_recv_ring(&u->ring, u->br, u->buf_count, 0, 0, 0);
  return r;
}

// Adds what TCP needs to a ring, once, before its first TCP command: `rx_count` (a power of two)
// stream receive buffers of `rx_size` bytes as provided-buffer group 1, incrementally consumed
// where the kernel can (a small read then takes only its own bytes of a buffer), `slot_count`
// connection slot areas and `tx_bytes` of send memory. The memory is mapped untouched: pages
// cost only once used. Returns 0 or -errno (EALREADY: done before).
EXPORT int32_t sio_uring_tcp_init(sio_uring_t *u, uint32_t rx_count, uint32_t rx_size,
                                  uint32_t slot_count, uint32_t tx_bytes) {
  if (u->slots != NULL) return -EALREADY;
  if (rx_count == 0 || (rx_count & (rx_count - 1)) != 0 || rx_count > 32768 || rx_size < 256 ||
      slot_count == 0)
    return -EINVAL;
  u->sbr_bytes = ((size_t)rx_count * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
  u->sbufs_bytes = (size_t)rx_count * rx_size;
  u->slots_bytes = (size_t)slot_count * sizeof(sio_slot_t);
  u->tx_bytes = tx_bytes;
  u->sbr = map(u->sbr_bytes);
  u->sbufs = map(u->sbufs_bytes);
  u->slots = map(u->slots_bytes);
  u->tx = tx_bytes ? map(tx_bytes) : NULL;
  if (u->sbr == NULL || u->sbufs == NULL || u->slots == NULL || (tx_bytes && u->tx == NULL)) {
    unmap(u->sbr, u->sbr_bytes);
    unmap(u->sbufs, u->sbufs_bytes);
    unmap(u->slots, u->slots_bytes);
    unmap(u->tx, u->tx_bytes);
    u->sbr = NULL;
    u->sbufs = NULL;
    u->slots = NULL;
    u->tx = NULL;
    return -ENOMEM;
  }
  u->sbuf_count = rx_count;
  u->sbuf_size = rx_size;
  u->slot_count = slot_count;
  u->sbuf_inc = 1;
  int r = register_recv_ring(&u->ring, u->sbr, rx_count, 1, 1, 0);
  if (r < 0) {
    u->sbuf_inc = 0;
    r = register_recv_ring(&u->ring, u->sbr, rx_count, 1, 0, 0);
  }
  if (r < 0) return r;
  io_uring_buf_ring_init(u->sbr);
  int mask = io_uring_buf_ring_mask(rx_count);
  for (uint32_t i = 0; i < rx_count; i++)
    io_uring_buf_ring_add(u->sbr, u->sbufs + (size_t)i * rx_size, rx_size, i, mask, i);
  io_uring_buf_ring_advance(u->sbr, rx_count);
  return 0;
}

// Addresses and sizes JS needs to view the shared areas, by SIO_INFO_* key (src/sys/abi.ts, Info):
// the command and completion arrays, the receive and send buffers, the setup flags, the eventfd,
// the completion array's capacity, the payload's offset in a receive buffer, the ring fd, the
// completions left in the CQ by the last call, the GSO iovec area (SIO_GSO_MAX iovecs per send
// buffer), and whether multishot reads (SIO_OP_READ with flag 1) work.
EXPORT uint64_t sio_uring_info(sio_uring_t *u, uint32_t what) {
  switch (what) {
    case SIO_INFO_CMDS: return (uint64_t)(uintptr_t)u->cmds;
    case SIO_INFO_CQES: return (uint64_t)(uintptr_t)u->cqes;
    case SIO_INFO_RECV_BUFS: return (uint64_t)(uintptr_t)u->bufs;
    case SIO_INFO_SEND_BUFS: return (uint64_t)(uintptr_t)u->sends;
    case SIO_INFO_SETUP_FLAGS: return u->setup_flags;
    case SIO_INFO_EVENTFD: return (uint64_t)u->eventfd;
    case SIO_INFO_CQE_CAP: return u->cqe_cap;
    case SIO_INFO_PAYLOAD_OFFSET: return sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_in6);
    case SIO_INFO_RING_FD: return (uint64_t)u->ring.ring_fd;
    case SIO_INFO_CQ_LEFT: return u->overflow;
    case SIO_INFO_IOVS: return (uint64_t)(uintptr_t)u->iovs;
    case SIO_INFO_READ_MULTISHOT: return (uint64_t)u->read_multishot;
    case SIO_INFO_TCP_RECV_BUFS: return (uint64_t)(uintptr_t)u->sbufs;
    case SIO_INFO_TCP_SLOTS: return (uint64_t)(uintptr_t)u->slots;
    case SIO_INFO_TCP_SEND_MEM: return (uint64_t)(uintptr_t)u->tx;
    case SIO_INFO_TCP_INC: return (uint64_t)u->sbuf_inc;
    default: return 0;
  }
}

// Checks a command before it takes a submission entry: an entry once taken is submitted whatever
// happens, so a command refused after that would send the kernel a stale entry.
static int check(const sio_uring_t *u, const sio_cmd_t *c) {
  switch (c->op) {
    case SIO_OP_SENDMSG:
      return c->buf < u->small_count + u->large_count ? 0 : -EINVAL;
    case SIO_OP_SEND_GSO:
      return c->buf < u->small_count + u->large_count && c->count >= 1 &&
                     c->count <= SIO_GSO_MAX &&
                     c->addr == (uint64_t)(uintptr_t)(u->iovs + (size_t)c->buf * SIO_GSO_MAX)
                 ? 0
                 : -EINVAL;
    case SIO_OP_READ:
      return c->flag == 1 && !u->read_multishot ? -EOPNOTSUPP : 0;
    case SIO_OP_RECV_STREAM:
      return u->slots != NULL ? 0 : -EINVAL;
    case SIO_OP_SEND_STREAM:
      return c->buf < u->slot_count && c->count >= 1 && c->count <= SIO_TCP_IOV_MAX ? 0 : -EINVAL;
    case SIO_OP_CONNECT:
      return c->buf < u->slot_count ? 0 : -EINVAL;
    case SIO_OP_ACCEPT_MULTI:
    case SIO_OP_CANCEL_FD:
    case SIO_OP_RECV_MULTI:
    case SIO_OP_CANCEL:
    case SIO_OP_WAKE_READ:
    case SIO_OP_NOP:
    case SIO_OP_WRITE:
      return 0;
    default:
      return -EINVAL;
  }
}

static int prep(sio_uring_t *u, const sio_cmd_t *c) {
  if (c->op == SIO_OP_RECYCLE && c->flag == 1) {  // a stream receive buffer
    if (u->sbufs == NULL || c->buf >= u->sbuf_count) return -EINVAL;
    int mask = io_uring_buf_ring_mask(u->sbuf_count);
    io_uring_buf_ring_add(u->sbr, u->sbufs + (size_t)c->buf * u->sbuf_size, u->sbuf_size, c->buf,
                          mask, 0);
    io_uring_buf_ring_advance(u->sbr, 1);
    return 0;
  }
  if (c->op == SIO_OP_RECYCLE) {
    if (c->buf >= u->buf_count) return -EINVAL;
    int mask = io_uring_buf_ring_mask(u->buf_count);
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)c->buf * u->buf_size, u->buf_size, c->buf,
                          mask, 0);
    io_uring_buf_ring_advance(u->br, 1);
    return 0;
  }
  int bad = check(u, c);
  if (bad < 0) return bad;
  // a connect and its linked timeout must go in one submit: never split them
  if (c->op == SIO_OP_CONNECT && c->len > 0 && io_uring_sq_space_left(&u->ring) < 2)
    io_uring_submit(&u->ring);
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (sqe == NULL) {
    io_uring_submit(&u->ring);
    sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL) return -EBUSY;
  }
  switch (c->op) {
    case SIO_OP_RECV_MULTI:
      // MSG_TRUNC: a datagram larger than the buffer reports its real size (payloadlen)
      io_uring_prep_recvmsg_multishot(sqe, c->fd, &u->recv_template, MSG_TRUNC);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
      break;
    case SIO_OP_SENDMSG: {
      // IORING_OP_SEND with a destination address (sendto): no msghdr for the kernel to copy
      uint8_t *name = send_base(u, c->buf);
      socklen_t len = addr_len(c->dst);
      memcpy(name, c->dst, len);
      io_uring_prep_send(sqe, c->fd, (void *)(uintptr_t)c->addr, c->len, 0);
      io_uring_prep_send_set_addr(sqe, (const struct sockaddr *)name, (uint16_t)len);
      break;
    }
    case SIO_OP_SEND_GSO: {
      // the send buffer's header holds the address, the msghdr and the UDP_SEGMENT cmsg
      uint8_t *base = send_base(u, c->buf);
      struct gso_header {
        struct sockaddr_in6 name;
        struct msghdr msg;
        union {
          char buf[CMSG_SPACE(sizeof(uint16_t))];
          struct cmsghdr align;
        } control;
      } *h = (struct gso_header *)base;
      _Static_assert(sizeof(struct gso_header) <= SIO_SEND_HEADER, "GSO header must fit a send header");
      socklen_t len = addr_len(c->dst);
      memcpy(&h->name, c->dst, len);
      memset(&h->msg, 0, sizeof(h->msg));
      h->msg.msg_name = &h->name;
      h->msg.msg_namelen = len;
      h->msg.msg_iov = (struct iovec *)(uintptr_t)c->addr;
      h->msg.msg_iovlen = c->count;
      h->msg.msg_control = h->control.buf;
      h->msg.msg_controllen = sizeof(h->control.buf);
      struct cmsghdr *cm = CMSG_FIRSTHDR(&h->msg);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t segment = (uint16_t)c->len;
      memcpy(CMSG_DATA(cm), &segment, sizeof(segment));
      io_uring_prep_sendmsg(sqe, c->fd, &h->msg, 0);
      break;
    }
    case SIO_OP_READ:
      // offset -1: the queue has no file position; length 0 (multishot) or the buffer size
      if (c->flag == 1) {
        io_uring_prep_rw(IORING_OP_READ_MULTISHOT, sqe, c->fd, NULL, 0, (uint64_t)-1);
      } else {
        io_uring_prep_read(sqe, c->fd, NULL, u->buf_size, (uint64_t)-1);
      }
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
      break;
    case SIO_OP_WRITE:
      io_uring_prep_write(sqe, c->fd, (const void *)(uintptr_t)c->addr, c->len, (uint64_t)-1);
      break;
    case SIO_OP_CANCEL:
      io_uring_prep_cancel64(sqe, c->addr, 0);
      break;
    case SIO_OP_ACCEPT_MULTI:
      io_uring_prep_multishot_accept(sqe, c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case SIO_OP_RECV_STREAM:
      io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 1;
      break;
    case SIO_OP_SEND_STREAM: {
      // MSG_WAITALL: the kernel retries a short send of a stream socket until all is taken
      sio_slot_t *slot = (sio_slot_t *)(u->slots + (size_t)c->buf * sizeof(sio_slot_t));
      if (c->count == 1) {
        io_uring_prep_send(sqe, c->fd, slot->iov[0].iov_base, slot->iov[0].iov_len,
                           MSG_WAITALL | MSG_NOSIGNAL);
      } else {
        memset(&slot->msg, 0, sizeof(slot->msg));
        slot->msg.msg_iov = slot->iov;
        slot->msg.msg_iovlen = c->count;
        io_uring_prep_sendmsg(sqe, c->fd, &slot->msg, MSG_WAITALL | MSG_NOSIGNAL);
      }
      break;
    }
    case SIO_OP_CONNECT: {
      sio_slot_t *slot = (sio_slot_t *)(u->slots + (size_t)c->buf * sizeof(sio_slot_t));
      socklen_t len = addr_len(c->dst);
      memcpy(slot->addr, c->dst, len);
      io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)slot->addr, len);
      io_uring_sqe_set_data64(sqe, c->user_data);
      if (c->len == 0) return 0;
      sqe->flags |= IOSQE_IO_LINK;  // the timeout below bounds it (ETIMEDOUT comes as ECANCELED)
      slot->timeout.tv_sec = c->len / 1000;
      slot->timeout.tv_nsec = (long long)(c->len % 1000) * 1000000;
      sqe = io_uring_get_sqe(&u->ring);  // there is room: checked above
      io_uring_prep_link_timeout(sqe, &slot->timeout, 0);
      io_uring_sqe_set_data64(sqe, c->addr);
      return 0;
    }
    case SIO_OP_CANCEL_FD:
      io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
      break;
    case SIO_OP_WAKE_READ:
      io_uring_prep_read(sqe, u->eventfd, &u->eventfd_value, sizeof(u->eventfd_value), 0);
      break;
    default:  // SIO_OP_NOP
      io_uring_prep_nop(sqe);
      break;
  }
  io_uring_sqe_set_data64(sqe, c->user_data);
  return 0;
}

static void prep_all(sio_uring_t *u, uint32_t n) {
  for (uint32_t i = 0; i < n && i < u->cmd_cap; i++) {
    int r = prep(u, &u->cmds[i]);
    if (r < 0 && u->failed_count < u->cqe_cap) {
      sio_cqe_t *f = &u->failed[u->failed_count++];
      f->user_data = u->cmds[i].user_data;
      f->res = r;
      f->flags = SIO_PREP_FAILED;  // marks a preparation failure
    }
  }
}

// Prepares and submits the first `n` commands without reaping anything: their completions (and
// any preparation failures) are reported by the next sio_uring_enter. For a full command array.
EXPORT int32_t sio_uring_submit(sio_uring_t *u, uint32_t n) {
  prep_all(u, n);
  int r = io_uring_submit(&u->ring);
  return r < 0 && r != -EBUSY && r != -EINTR ? r : 0;
}

// Prepares the first `n` commands, submits them, waits up to `timeout_ns` (-1 forever, 0 not at
// all) for at least one completion, and copies every available completion (up to the array's
// capacity) into the completion array, preparation failures first. Returns the number copied, or
// -errno. A command that cannot be prepared produces a completion with its user_data, the error
// as `res` and flags 0xffffffff.
EXPORT int32_t sio_uring_enter(sio_uring_t *u, uint32_t n, int64_t timeout_ns) {
  prep_all(u, n);
  uint32_t failed = u->failed_count;
  memcpy(u->cqes, u->failed, sizeof(sio_cqe_t) * failed);
  u->failed_count = 0;
  int r;
  if (failed > 0 || timeout_ns == 0) {
    r = io_uring_submit_and_get_events(&u->ring);
  } else if (timeout_ns < 0) {
    r = io_uring_submit_and_wait(&u->ring, 1);
  } else {
    struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
                                   .tv_nsec = timeout_ns % 1000000000};
    struct io_uring_cqe *cqe = NULL;
    r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
  }
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) return r;
  uint32_t count = failed;
  unsigned head;
  struct io_uring_cqe *cqe;
  unsigned seen = 0;
  io_uring_for_each_cqe(&u->ring, head, cqe) {
    if (count >= u->cqe_cap) break;
    u->cqes[count].user_data = cqe->user_data;
    u->cqes[count].res = cqe->res;
    u->cqes[count].flags = cqe->flags;
    count++;
    seen++;
  }
  io_uring_cq_advance(&u->ring, seen);
  u->overflow = io_uring_cq_ready(&u->ring);
  return (int32_t)count;
}
