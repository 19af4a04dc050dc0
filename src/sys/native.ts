/**
 * Finds and loads the native shim (libsansio.so) built by `bun run build:native`.
 * Loading happens once per thread, on first use; every backend shares the same bindings.
 */
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";

const { i32, u32, i64, i64_fast, u64, u64_fast, ptr, void: none } = FFIType;

const symbols = {
  sio_udp_bind: { args: [ptr, i32, i32, i32, i32, ptr], returns: i32 },
  sio_close: { args: [i32], returns: i32 },
  sio_udp_drops: { args: [i32], returns: i64_fast },
  sio_count_fds: { args: [], returns: i32 },
  sio_pin_cpu: { args: [i32], returns: i32 },
  sio_current_cpu: { args: [], returns: i32 },
  sio_thread_cpu_ns: { args: [], returns: i64_fast },
  sio_eventfd: { args: [], returns: i32 },
  sio_wake: { args: [i32], returns: i32 },
  sio_eventfd_drain: { args: [i32], returns: i32 },
  sio_uring_probe: { args: [], returns: i32 },
  sio_uring_new: { args: [u32, u32, u32, u32, u32, u32, u32, u32, ptr], returns: ptr },
  sio_uring_free: { args: [ptr], returns: none },
  sio_uring_info: { args: [ptr, u32], returns: u64_fast },
  sio_uring_pack_recv: { args: [ptr, u32], returns: i32 },
  sio_uring_enter: { args: [ptr, u32, i64], returns: i32 },
  sio_uring_submit: { args: [ptr, u32], returns: i32 },
  sio_tun_open: { args: [ptr, i32, i32, ptr], returns: i32 },
  sio_if_set_ipv4: { args: [ptr, u32, i32], returns: i32 },
  sio_if_set_mtu: { args: [ptr, i32], returns: i32 },
  sio_if_set_up: { args: [ptr, i32], returns: i32 },
  sio_if_index: { args: [ptr], returns: i32 },
  sio_tun_check: { args: [i32], returns: i32 },
  sio_tun_read: { args: [i32, ptr, u32, u32, ptr], returns: i32 },
  sio_tun_write: { args: [i32, ptr, u32], returns: i32 },
  sio_tun_drops: { args: [i32, ptr], returns: i32 },
  sio_epoll_new: { args: [], returns: i32 },
  sio_epoll_ctl: { args: [i32, i32, i32, u32, u64], returns: i32 },
  sio_epoll_wait: { args: [i32, ptr, i32, i32], returns: i32 },
  sio_ledger_new_owner: { args: [], returns: i32 },
  sio_ledger_bind: { args: [i32], returns: i32 },
  sio_ledger_thread_alive: { args: [i32], returns: i32 },
  sio_ledger_release: { args: [i32, i32, ptr, i32], returns: none },
  sio_recvmmsg: { args: [i32, ptr, u32, u32, ptr], returns: i32 },
  sio_sendmmsg: { args: [i32, ptr, u32], returns: i32 },
} as const;

/** The shim's functions, as bound by bun:ffi. */
export type Native = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

/** The shim could not be found or loaded; the message says what to run or install. */
export class NativeLoadError extends Error {
  override readonly name = "NativeLoadError";
}

/** Where the shim is looked for: $SANSIO_NATIVE, then native/build/<platform>-<arch>/. */
export function nativePath(): string {
  return (
    process.env.SANSIO_NATIVE ??
    join(
      import.meta.dir,
      "..",
      "..",
      "native",
      "build",
      `${process.platform}-${process.arch}`,
      "libsansio.so",
    )
  );
}

let loaded: Native | undefined;

/** The loaded shim. Throws NativeLoadError with instructions when it is missing or broken. */
export function native(): Native {
  if (loaded !== undefined) return loaded;
  const path = nativePath();
  const howTo =
    "Build it with `bun run build:native` in the bun-sansio package (it needs a C compiler and liburing 2.3+: apt-get install gcc liburing-dev).";
  if (process.platform !== "linux") {
    throw new NativeLoadError(
      `bun-sansio's native backends need Linux; this is ${process.platform}.`,
    );
  }
  if (!existsSync(path))
    throw new NativeLoadError(`bun-sansio native shim not found at ${path}. ${howTo}`);
  try {
    loaded = dlopen(path, symbols).symbols;
  } catch (e) {
    throw new NativeLoadError(
      `bun-sansio native shim at ${path} failed to load (${e instanceof Error ? e.message : String(e)}). ${howTo}`,
    );
  }
  return loaded;
}
