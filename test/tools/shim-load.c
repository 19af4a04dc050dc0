// Loads a libsansio.so with dlopen and calls functions that have no side effects, printing one
// JSON line: for the prebuilt shims no Bun of this machine can load (musl builds; arm64 builds
// under qemu). Built per target by test/dist/prebuilt.test.ts.
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: shim-load LIBSANSIO.so\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  uint32_t (*abi)(void) = (uint32_t (*)(void))dlsym(lib, "sio_abi_hash");
  int32_t (*fds)(void) = (int32_t (*)(void))dlsym(lib, "sio_count_fds");
  int32_t (*epoll)(void) = (int32_t (*)(void))dlsym(lib, "sio_epoll_new");
  if (abi == NULL || fds == NULL || epoll == NULL) {
    fprintf(stderr, "dlsym: %s\n", dlerror());
    return 1;
  }
  int32_t before = fds();
  int32_t ep = epoll();
  printf("{\"abi\":%u,\"epoll\":%s,\"fds\":%d}\n", abi(), ep >= 0 ? "true" : "false", fds() - before);
  return 0;
}
