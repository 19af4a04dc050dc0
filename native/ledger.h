// The process-wide ledger of what each worker thread opened through this shim (fds, io_uring
// instances), so that whoever outlives a thread can close what the thread could not. See ledger.c.
#ifndef SIO_LEDGER_H
#define SIO_LEDGER_H
#include <stddef.h>
#include <stdint.h>

// Records `fd` (just opened by the calling thread) under the thread's owner, if it has one.
void sio_ledger_track_fd(int fd);
// Forgets `fd` before it is closed.
void sio_ledger_untrack_fd(int fd);
// Records an io_uring instance (with its memory and its own fds) under the thread's owner.
void sio_ledger_track_uring(void *u, size_t bytes);
// Forgets an io_uring instance before it is freed.
void sio_ledger_untrack_uring(void *u);

#endif
