// The ledger: fds belong to the process, not to the thread that opened them, so a worker thread
// that ends without closing its sockets (process.exit() in a Worker, terminate(), a crash) would
// leave them open for the life of the process; a UDP socket left in a SO_REUSEPORT group keeps
// taking its share of the flows and answers none. Every fd and io_uring instance this shim opens
// on a thread bound to an owner is recorded here, under a lock, at the moment it is opened and
// until it is closed; the controller releases what a dead worker's owner still holds.
//
// Order matters for fd numbers, which the kernel reuses: an fd is recorded after it is opened
// and forgotten before it is closed, so the ledger never names an fd that belongs to someone else.
#define _GNU_SOURCE
#include "ledger.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef struct uring_rec {
  struct uring_rec *next;
  void *u;
  size_t bytes;
  int32_t owner;
} uring_rec;

typedef struct owner_rec {
  struct owner_rec *next;
  int32_t owner;
  int32_t tid;
} owner_rec;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int32_t *fd_owner;  // by fd: the owner, or 0 for none (owners start at 1)
static size_t fd_cap;
static uring_rec *urings;
static owner_rec *owners;
static int32_t next_owner = 1;
static __thread int32_t thread_owner;  // 0: this thread records nothing

void sio_uring_free(void *u);  // sansio.c

// A new owner id, unique in this process (one per worker the controller starts).
EXPORT int32_t sio_ledger_new_owner(void) {
  pthread_mutex_lock(&lock);
  int32_t owner = next_owner++;
  pthread_mutex_unlock(&lock);
  return owner;
}

// Makes the calling thread record what it opens under `owner` (0: stop recording), and notes the
// thread's id so that the owner's memory is freed only once the thread is gone.
EXPORT int32_t sio_ledger_bind(int32_t owner) {
  thread_owner = owner;
  if (owner <= 0) return 0;
  owner_rec *r = malloc(sizeof(*r));
  if (r == NULL) return -ENOMEM;
  r->owner = owner;
  r->tid = (int32_t)syscall(SYS_gettid);
  pthread_mutex_lock(&lock);
  r->next = owners;
  owners = r;
  pthread_mutex_unlock(&lock);
  return 0;
}

void sio_ledger_track_fd(int fd) {
  int32_t owner = thread_owner;
  if (owner <= 0 || fd < 0) return;
  pthread_mutex_lock(&lock);
  if ((size_t)fd >= fd_cap) {
    size_t cap = fd_cap ? fd_cap : 1024;
    while (cap <= (size_t)fd) cap *= 2;
    int32_t *grown = realloc(fd_owner, cap * sizeof(*grown));
    if (grown == NULL) {  // cannot record it: it stays the thread's own business
      pthread_mutex_unlock(&lock);
      return;
    }
    memset(grown + fd_cap, 0, (cap - fd_cap) * sizeof(*grown));
    fd_owner = grown;
    fd_cap = cap;
  }
  fd_owner[fd] = owner;
  pthread_mutex_unlock(&lock);
}

void sio_ledger_untrack_fd(int fd) {
  if (fd < 0) return;
  pthread_mutex_lock(&lock);
  if ((size_t)fd < fd_cap) fd_owner[fd] = 0;
  pthread_mutex_unlock(&lock);
}

void sio_ledger_track_uring(void *u, size_t bytes) {
  int32_t owner = thread_owner;
  if (owner <= 0) return;
  uring_rec *r = malloc(sizeof(*r));
  if (r == NULL) return;
  r->u = u;
  r->bytes = bytes;
  r->owner = owner;
  pthread_mutex_lock(&lock);
  r->next = urings;
  urings = r;
  pthread_mutex_unlock(&lock);
}

void sio_ledger_untrack_uring(void *u) {
  pthread_mutex_lock(&lock);
  for (uring_rec **p = &urings; *p != NULL; p = &(*p)->next) {
    if ((*p)->u == u) {
      uring_rec *r = *p;
      *p = r->next;
      free(r);
      break;
    }
  }
  pthread_mutex_unlock(&lock);
}

// 1 while a thread bound to `owner` still exists in this process, else 0. Memory the kernel may
// still write into (receive buffers of an io_uring instance) is freed only after that: a thread's
// exit cancels every io_uring request it made.
EXPORT int32_t sio_ledger_thread_alive(int32_t owner) {
  int alive = 0;
  pthread_mutex_lock(&lock);
  for (owner_rec *r = owners; r != NULL && !alive; r = r->next) {
    if (r->owner != owner) continue;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d", r->tid);
    alive = access(path, F_OK) == 0;
  }
  pthread_mutex_unlock(&lock);
  return alive;
}

// Closes every fd `owner` still holds and, with `free_urings` (only once its thread is gone),
// frees its io_uring instances and forgets the owner. Writes the fds closed to `out[0]`, the
// bytes freed (without `free_urings`: the bytes its io_uring instances still hold) to `out[1]`,
// the number of sockets closed to `out[2]` and the inode numbers of up to
// `max_sockets` of them from `out[3]` on: an io_uring request may keep a socket alive (and in its
// SO_REUSEPORT group) until the ring's asynchronous teardown ends, so the caller can wait for
// those inodes to leave /proc/net.
EXPORT void sio_ledger_release(int32_t owner, int32_t free_urings, double *out,
                               int32_t max_sockets) {
  double fds = 0, bytes = 0;
  int32_t sockets = 0;
  uring_rec *mine = NULL;
  pthread_mutex_lock(&lock);
  for (size_t fd = 0; fd < fd_cap; fd++) {
    if (fd_owner[fd] != owner) continue;
    fd_owner[fd] = 0;
    struct stat st;
    // the system call, not glibc's fstat: that one is versioned GLIBC_2.33, and the prebuilt
    // shims stay at GLIBC_2.17 (the kernel's struct stat is libc's on x86-64 and arm64)
    if (syscall(SYS_fstat, (int)fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
      if (sockets < max_sockets) out[3 + sockets] = (double)st.st_ino;
      sockets++;
    }
    close((int)fd);  // sockets first, then the rings whose requests may hold them
    fds++;
  }
  for (uring_rec *r = urings; !free_urings && r != NULL; r = r->next) {
    if (r->owner == owner) bytes += (double)r->bytes;  // still held, reported as such
  }
  for (uring_rec **p = &urings; free_urings && *p != NULL;) {
    if ((*p)->owner == owner) {
      uring_rec *r = *p;
      *p = r->next;
      r->next = mine;
      mine = r;
    } else {
      p = &(*p)->next;
    }
  }
  for (owner_rec **p = &owners; free_urings && *p != NULL;) {
    if ((*p)->owner == owner) {
      owner_rec *r = *p;
      *p = r->next;
      free(r);
    } else {
      p = &(*p)->next;
    }
  }
  pthread_mutex_unlock(&lock);
  while (mine != NULL) {  // outside the lock: freeing takes the lock to untrack (a no-op now)
    uring_rec *r = mine;
    mine = r->next;
    sio_uring_free(r->u);  // closes its ring fd and eventfd, unmaps its memory
    fds += 2;
    bytes += (double)r->bytes;
    free(r);
  }
  out[0] = fds;
  out[1] = bytes;
  out[2] = sockets;
}
