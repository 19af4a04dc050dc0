// Does io_uring zero-copy send (IORING_OP_SEND_ZC) or a registered (fixed) socket pay for a TCP
// stream on this machine? One process, two threads on one loopback TCP connection (127.0.0.1),
// each pinned to its own CPU. Link with -luring (liburing 2.3 is enough; newer constants are
// defined below).
//
//   tcp_zc stream MODE SIZE BYTES [INFLIGHT]
//     A sender thread on CPU 0 pushes BYTES bytes in SIZE-byte sends through io_uring, INFLIGHT
//     (default 8) sends in flight, each from its own buffer; a receiver thread on CPU 1 reads and
//     discards with blocking recv() into a 1 MiB buffer until EOF. MODE is
//       send       IORING_OP_SEND on the plain fd
//       fixed      IORING_OP_SEND on the socket registered as fixed file 0 (IOSQE_FIXED_FILE)
//       send_zc    IORING_OP_SEND_ZC with IORING_SEND_ZC_REPORT_USAGE; a buffer is reused only
//                  after its notification CQE (IORING_CQE_F_NOTIF), and notifications whose
//                  result has IORING_NOTIF_USAGE_ZC_COPIED set are counted as "copied"
//       zc_regbuf  send_zc from registered buffers (IORING_RECVSEND_FIXED_BUF), which saves the
//                  per-send page pinning
//
//   tcp_zc rr MODE COUNT
//     Closed-loop 64 B ping-pong over one connection (TCP_NODELAY): a blocking client thread on
//     CPU 1 sends 64 B and waits for the 64 B echo, COUNT times; the echo server thread on CPU 0
//     runs io_uring (recv, then send + the next recv in one submit, the send with
//     IOSQE_CQE_SKIP_SUCCESS, so one io_uring_enter per round trip). MODE is plain or fixed (the
//     accepted socket registered as fixed file 0).
//
// Prints one JSON line. CPU figures are getrusage(RUSAGE_THREAD) user + sys of each thread over
// the measured interval (kernel work done on the thread's behalf, including softirq time the
// kernel charges to it), and proc_cpu_ns is getrusage(RUSAGE_SELF) over the whole run, which
// also covers io_uring's io-wq worker threads; machine_cpu_ns is the busy time of all CPUs from
// /proc/stat (10 ms resolution) over the stream run.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#ifndef IORING_CQE_F_NOTIF
#define IORING_CQE_F_NOTIF (1U << 3)
#endif

#define MAX_INFLIGHT 64
#define RECV_BUF (1 << 20)

enum mode { M_SEND, M_FIXED, M_ZC, M_ZC_REGBUF, M_PLAIN };

static void die(const char *what, int err) {
  fprintf(stderr, "tcp_zc: %s: %s\n", what, strerror(err));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rusage_ns(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

// busy time of all CPUs (user + nice + system + irq + softirq) from /proc/stat, in ns: catches
// work no thread of ours is charged for (softirqs run from idle or in ksoftirqd), but also
// anything else running on the machine
static uint64_t machine_busy_ns(void) {
  unsigned long long v[7] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6]) != 7)
    die("/proc/stat", errno);
  fclose(f);
  long hz = sysconf(_SC_CLK_TCK);
  return (v[0] + v[1] + v[2] + v[5] + v[6]) * (1000000000ull / (uint64_t)hz);
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (err) die("pthread_setaffinity_np", err);
}

static void ring_init(struct io_uring *ring) {
  // the project's ring flags (native/uring.c), falling back for older kernels
  static const unsigned tries[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
                                   IORING_SETUP_COOP_TASKRUN, 0};
  int ret = -EINVAL;
  for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
    struct io_uring_params p = {.flags = tries[i] | IORING_SETUP_CQSIZE, .cq_entries = 512};
    ret = io_uring_queue_init_params(128, ring, &p);
    if (ret == 0) return;
  }
  die("io_uring_queue_init_params", -ret);
}

static struct io_uring_sqe *get_sqe(struct io_uring *ring) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
  if (!sqe) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  if (!sqe) die("io_uring_get_sqe", EBUSY);
  return sqe;
}

// ---- shared connection setup ----

static int listen_fd;
static int listen_port;
static pthread_barrier_t start_barrier;

static void listen_loopback(void) {
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
      listen(listen_fd, 4) < 0)
    die("listen", errno);
  socklen_t len = sizeof(addr);
  getsockname(listen_fd, (struct sockaddr *)&addr, &len);
  listen_port = ntohs(addr.sin_port);
}

static int connect_loopback(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(listen_port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("connect", errno);
  return fd;
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// ---- stream ----

static enum mode s_mode;
static size_t s_size;
static uint64_t s_bytes;
static int s_inflight = 8;

static uint64_t rx_bytes, rx_end_ns, rx_cpu_ns, rx_calls;
static uint64_t tx_start_ns, tx_end_ns, tx_cpu_ns, tx_ops, tx_short, tx_notifs, tx_copied,
    tx_enters;

static void *receiver(void *arg) {
  (void)arg;
  pin(1);
  int fd = accept(listen_fd, NULL, NULL);
  if (fd < 0) die("accept", errno);
  char *buf = malloc(RECV_BUF);
  memset(buf, 0, RECV_BUF);
  pthread_barrier_wait(&start_barrier);
  uint64_t cpu0 = rusage_ns(RUSAGE_THREAD);
  for (;;) {
    ssize_t n = recv(fd, buf, RECV_BUF, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("recv", errno);
    if (n == 0) break;
    rx_bytes += (uint64_t)n;
    rx_calls++;
  }
  rx_end_ns = now_ns();
  rx_cpu_ns = rusage_ns(RUSAGE_THREAD) - cpu0;
  close(fd);
  free(buf);
  return NULL;
}

struct slot {
  char *buf;
  size_t off;      // bytes of this message already sent
  int pending;     // CQEs still expected (send result and, for zero-copy, the notification)
  int busy;
};

static void *sender(void *arg) {
  (void)arg;
  pin(0);
  int sock = connect_loopback();
  struct io_uring ring;
  ring_init(&ring);
  struct slot slots[MAX_INFLIGHT];
  struct iovec iovs[MAX_INFLIGHT];
  for (int i = 0; i < s_inflight; i++) {
    slots[i].buf = aligned_alloc(4096, (s_size + 4095) & ~(size_t)4095);
    memset(slots[i].buf, 'a' + i, s_size);
    slots[i].off = slots[i].pending = slots[i].busy = 0;
    iovs[i] = (struct iovec){.iov_base = slots[i].buf, .iov_len = s_size};
  }
  int target = sock;
  unsigned sqe_flags = 0;
  if (s_mode == M_FIXED) {
    int ret = io_uring_register_files(&ring, &sock, 1);
    if (ret < 0) die("io_uring_register_files", -ret);
    target = 0;
    sqe_flags = IOSQE_FIXED_FILE;
  }
  if (s_mode == M_ZC_REGBUF) {
    int ret = io_uring_register_buffers(&ring, iovs, (unsigned)s_inflight);
    if (ret < 0) die("io_uring_register_buffers", -ret);
  }
  uint64_t total_ops = (s_bytes + s_size - 1) / s_size;
  uint64_t submitted = 0, done = 0;
  pthread_barrier_wait(&start_barrier);
  uint64_t cpu0 = rusage_ns(RUSAGE_THREAD);
  tx_start_ns = now_ns();

#define PREP(i)                                                                             \
  do {                                                                                      \
    struct io_uring_sqe *sqe = get_sqe(&ring);                                              \
    struct slot *sl = &slots[i];                                                            \
    if (s_mode == M_ZC)                                                                     \
      io_uring_prep_send_zc(sqe, target, sl->buf + sl->off, s_size - sl->off, MSG_WAITALL, \
                            IORING_SEND_ZC_REPORT_USAGE);                                   \
    else if (s_mode == M_ZC_REGBUF)                                                         \
      io_uring_prep_send_zc_fixed(sqe, target, sl->buf + sl->off, s_size - sl->off,         \
                                  MSG_WAITALL, IORING_SEND_ZC_REPORT_USAGE, (unsigned)(i)); \
    else                                                                                    \
      io_uring_prep_send(sqe, target, sl->buf + sl->off, s_size - sl->off, MSG_WAITALL);    \
    sqe->flags |= sqe_flags;                                                                \
    sqe->user_data = (uint64_t)(i);                                                         \
    sl->pending++;                                                                          \
    tx_ops++;                                                                               \
  } while (0)

  while (done < total_ops) {
    for (int i = 0; i < s_inflight && submitted < total_ops; i++) {
      if (slots[i].busy) continue;
      slots[i].busy = 1;
      slots[i].off = 0;
      submitted++;
      PREP(i);
    }
    int ret = io_uring_submit_and_wait(&ring, 1);
    tx_enters++;
    if (ret < 0 && ret != -EINTR) die("io_uring_submit_and_wait", -ret);
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      int i = (int)cqe->user_data;
      struct slot *sl = &slots[i];
      sl->pending--;
      if (cqe->flags & IORING_CQE_F_NOTIF) {
        tx_notifs++;
        if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) tx_copied++;
      } else {
        if (cqe->res < 0) die("send", -cqe->res);
        if (cqe->flags & IORING_CQE_F_MORE) sl->pending++;  // a notification follows
        sl->off += (size_t)cqe->res;
        if (sl->off < s_size) {  // short send: send the rest from the same buffer
          tx_short++;
          PREP(i);
        }
      }
      if (sl->pending == 0 && sl->off >= s_size) {
        sl->busy = 0;
        done++;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  tx_end_ns = now_ns();
  tx_cpu_ns = rusage_ns(RUSAGE_THREAD) - cpu0;
  shutdown(sock, SHUT_WR);
  io_uring_queue_exit(&ring);
  close(sock);
  return NULL;
}

static int run_stream(void) {
  listen_loopback();
  pthread_barrier_init(&start_barrier, NULL, 2);
  uint64_t proc0 = rusage_ns(RUSAGE_SELF), machine0 = machine_busy_ns();
  pthread_t rt, st;
  pthread_create(&rt, NULL, receiver, NULL);
  pthread_create(&st, NULL, sender, NULL);
  pthread_join(st, NULL);
  pthread_join(rt, NULL);
  uint64_t proc_cpu = rusage_ns(RUSAGE_SELF) - proc0, machine = machine_busy_ns() - machine0;
  const char *names[] = {"send", "fixed", "send_zc", "zc_regbuf"};
  printf("{\"kind\":\"stream\",\"mode\":\"%s\",\"size\":%zu,\"inflight\":%d,\"bytes\":%llu,"
         "\"wall_ns\":%llu,\"send_wall_ns\":%llu,\"send_ops\":%llu,\"short\":%llu,"
         "\"enters\":%llu,\"sender_cpu_ns\":%llu,\"receiver_cpu_ns\":%llu,\"recv_calls\":%llu,"
         "\"proc_cpu_ns\":%llu,\"machine_cpu_ns\":%llu,\"notifs\":%llu,\"copied\":%llu}\n",
         names[s_mode], s_size, s_inflight, (unsigned long long)rx_bytes,
         (unsigned long long)(rx_end_ns - tx_start_ns),
         (unsigned long long)(tx_end_ns - tx_start_ns), (unsigned long long)tx_ops,
         (unsigned long long)tx_short, (unsigned long long)tx_enters,
         (unsigned long long)tx_cpu_ns, (unsigned long long)rx_cpu_ns,
         (unsigned long long)rx_calls, (unsigned long long)proc_cpu, (unsigned long long)machine,
         (unsigned long long)tx_notifs, (unsigned long long)tx_copied);
  return rx_bytes == (uint64_t)((s_bytes + s_size - 1) / s_size) * s_size ? 0 : 2;
}

// ---- request/response ----

#define RR_SIZE 64
static uint64_t rr_count;
static uint64_t srv_cpu_ns, srv_ops, srv_enters, cli_cpu_ns, cli_start_ns, cli_end_ns;

static void *rr_server(void *arg) {
  (void)arg;
  pin(0);
  int sock = accept(listen_fd, NULL, NULL);
  if (sock < 0) die("accept", errno);
  nodelay(sock);
  struct io_uring ring;
  ring_init(&ring);
  int target = sock;
  unsigned sqe_flags = 0;
  if (s_mode == M_FIXED) {
    int ret = io_uring_register_files(&ring, &sock, 1);
    if (ret < 0) die("io_uring_register_files", -ret);
    target = 0;
    sqe_flags = IOSQE_FIXED_FILE;
  }
  static char bufs[2][RR_SIZE];
  int cur = 0;
  pthread_barrier_wait(&start_barrier);
  uint64_t cpu0 = rusage_ns(RUSAGE_THREAD);
  struct io_uring_sqe *sqe = get_sqe(&ring);
  io_uring_prep_recv(sqe, target, bufs[cur], RR_SIZE, 0);
  sqe->flags |= sqe_flags;
  sqe->user_data = 1;  // 1 = recv into bufs[cur], 2 = send
  srv_ops++;
  int open = 1;
  while (open) {
    int ret = io_uring_submit_and_wait(&ring, 1);
    srv_enters++;
    if (ret < 0 && ret != -EINTR) die("io_uring_submit_and_wait", -ret);
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      if (cqe->res < 0) die(cqe->user_data == 1 ? "recv" : "send", -cqe->res);
      if (cqe->user_data != 1) continue;
      if (cqe->res == 0) {
        open = 0;
        continue;
      }
      // echo what arrived and post the next receive into the other buffer, in one submit
      sqe = get_sqe(&ring);
      io_uring_prep_send(sqe, target, bufs[cur], (size_t)cqe->res, MSG_WAITALL);
      sqe->flags |= sqe_flags | IOSQE_CQE_SKIP_SUCCESS;  // only a failed send posts a CQE
      sqe->user_data = 2;
      cur ^= 1;
      sqe = get_sqe(&ring);
      io_uring_prep_recv(sqe, target, bufs[cur], RR_SIZE, 0);
      sqe->flags |= sqe_flags;
      sqe->user_data = 1;
      srv_ops += 2;
    }
    io_uring_cq_advance(&ring, seen);
  }
  srv_cpu_ns = rusage_ns(RUSAGE_THREAD) - cpu0;
  io_uring_queue_exit(&ring);
  close(sock);
  return NULL;
}

static void *rr_client(void *arg) {
  (void)arg;
  pin(1);
  int fd = connect_loopback();
  nodelay(fd);
  char out[RR_SIZE], in[RR_SIZE];
  memset(out, 'x', sizeof(out));
  pthread_barrier_wait(&start_barrier);
  uint64_t cpu0 = rusage_ns(RUSAGE_THREAD);
  cli_start_ns = now_ns();
  for (uint64_t n = 0; n < rr_count; n++) {
    if (send(fd, out, RR_SIZE, 0) != RR_SIZE) die("client send", errno);
    size_t got = 0;
    while (got < RR_SIZE) {
      ssize_t r = recv(fd, in + got, RR_SIZE - got, 0);
      if (r <= 0) die("client recv", r < 0 ? errno : EPIPE);
      got += (size_t)r;
    }
  }
  cli_end_ns = now_ns();
  cli_cpu_ns = rusage_ns(RUSAGE_THREAD) - cpu0;
  close(fd);
  return NULL;
}

static int run_rr(void) {
  listen_loopback();
  pthread_barrier_init(&start_barrier, NULL, 2);
  uint64_t proc0 = rusage_ns(RUSAGE_SELF);
  pthread_t ct, st;
  pthread_create(&st, NULL, rr_server, NULL);
  pthread_create(&ct, NULL, rr_client, NULL);
  pthread_join(ct, NULL);
  pthread_join(st, NULL);
  uint64_t proc_cpu = rusage_ns(RUSAGE_SELF) - proc0;
  printf("{\"kind\":\"rr\",\"mode\":\"%s\",\"size\":%d,\"round_trips\":%llu,\"wall_ns\":%llu,"
         "\"server_cpu_ns\":%llu,\"server_ops\":%llu,\"server_enters\":%llu,"
         "\"client_cpu_ns\":%llu,\"proc_cpu_ns\":%llu}\n",
         s_mode == M_FIXED ? "fixed" : "plain", RR_SIZE, (unsigned long long)rr_count,
         (unsigned long long)(cli_end_ns - cli_start_ns), (unsigned long long)srv_cpu_ns,
         (unsigned long long)srv_ops, (unsigned long long)srv_enters,
         (unsigned long long)cli_cpu_ns, (unsigned long long)proc_cpu);
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: tcp_zc stream send|fixed|send_zc|zc_regbuf SIZE BYTES [INFLIGHT]\n"
          "       tcp_zc rr plain|fixed COUNT\n");
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) return usage();
  const char *m = argv[2];
  if (!strcmp(argv[1], "stream")) {
    if (!strcmp(m, "send")) s_mode = M_SEND;
    else if (!strcmp(m, "fixed")) s_mode = M_FIXED;
    else if (!strcmp(m, "send_zc")) s_mode = M_ZC;
    else if (!strcmp(m, "zc_regbuf")) s_mode = M_ZC_REGBUF;
    else return usage();
    s_size = strtoull(argv[3], NULL, 10);
    s_bytes = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    if (argc > 5) s_inflight = atoi(argv[5]);
    if (s_size == 0 || s_bytes == 0 || s_inflight < 1 || s_inflight > MAX_INFLIGHT)
      return usage();
    return run_stream();
  }
  if (!strcmp(argv[1], "rr")) {
    if (!strcmp(m, "plain")) s_mode = M_PLAIN;
    else if (!strcmp(m, "fixed")) s_mode = M_FIXED;
    else return usage();
    rr_count = strtoull(argv[3], NULL, 10);
    if (rr_count == 0) return usage();
    return run_rr();
  }
  return usage();
}
