/** The calling thread as the OS sees it: its CPU time, the CPU it runs on, pinning it to one. */
import { native } from "./native.ts";

/** CPU time the calling thread has used (user + system, syscalls included), in milliseconds. */
export function threadCpuMs(): number {
  return Number(native().sio_thread_cpu_ns()) / 1e6;
}

/** The CPU the calling thread is running on now. */
export function currentCpu(): number {
  return native().sio_current_cpu();
}

/**
 * Pins the calling thread to CPU `cpu`. Throws a RangeError saying which CPUs exist when it
 * cannot (no such CPU, or not in this process's allowed set).
 */
export function pinThread(cpu: number): void {
  const r = Number.isInteger(cpu) ? native().sio_pin_cpu(cpu) : -22;
  if (r < 0) {
    const online = navigator.hardwareConcurrency;
    throw new RangeError(
      `cannot pin the thread to CPU ${cpu}: ${r === -22 ? "no such CPU here" : `errno ${-r}`} (this machine has CPUs 0..${online - 1})`,
    );
  }
}
