/**
 * The native shim's functions as TypeScript calls them: name, argument and return types. Part
 * of the ABI: its hash is in `abiHash` (src/sys/abi.ts), so a shim built for other signatures is
 * refused rather than called wrongly.
 */
import { FFIType } from "bun:ffi";

const { i32, u32, i64, i64_fast, u64, u64_fast, ptr, void: none } = FFIType;

/** The shim's exported functions and their signatures, as bun:ffi binds them. */
export const symbols = {
  sio_abi_hash: { args: [], returns: u32 },
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
  sio_uring_tcp_init: { args: [ptr, u32, u32, u32, u32], returns: i32 },
  sio_tcp_listen: { args: [ptr, i32, i32, ptr], returns: i32 },
  sio_tcp_socket: { args: [ptr], returns: i32 },
  sio_tcp_adopt: { args: [i32, i32, ptr, ptr], returns: i32 },
  sio_tcp_linger0: { args: [i32], returns: i32 },
  sio_tcp_shutdown: { args: [i32], returns: i32 },
  sio_tcp_so_error: { args: [i32], returns: i32 },
  sio_tcp_accept: { args: [i32], returns: i32 },
  sio_tcp_send: { args: [i32, ptr, u32], returns: i32 },
  sio_tcp_connect: { args: [i32, ptr], returns: i32 },
  sio_tcp_recv: { args: [i32, ptr, u32], returns: i32 },
  sio_tcp_sendv: { args: [i32, ptr, u32], returns: i32 },
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
