/**
 * Errors as the OS reports them, turned into `IoError`s: the errno name and a readable message
 * that, where a limit was hit, names the limit and how to raise it.
 */
import { readFileSync } from "node:fs";
import { getSystemErrorMessage, getSystemErrorName } from "node:util";
import type { IoError } from "../io/events.ts";
import { native } from "./native.ts";

/** Errnos the runtime's error table lacks (Linux numbers). */
const MORE_ERRNOS = new Map<number, IoError>([
  [
    -77,
    {
      code: "EBADFD",
      message: "file descriptor in bad state (a TUN/TAP queue whose device was deleted)",
    },
  ],
]);

const EMFILE = -24;
const ENFILE = -23;

/** This process's soft limit on open files, from /proc/self/limits (undefined if unreadable). */
function openFileLimit(): string | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    return line?.slice("Max open files".length).trim().split(/\s+/)[0];
  } catch {
    return undefined;
  }
}

/**
 * Turns a negative errno from the shim into an `IoError`. Running out of file descriptors says
 * which limit it is and how to raise it.
 */
export function ioError(negErrno: number): IoError {
  if (negErrno === EMFILE) {
    const limit = openFileLimit();
    return {
      code: "EMFILE",
      message: `too many open files in this process${limit === undefined ? "" : ` (limit ${limit})`}: raise the limit (ulimit -n, or LimitNOFILE= for a systemd service)`,
    };
  }
  if (negErrno === ENFILE) {
    return {
      code: "ENFILE",
      message: "the system's file table is full: raise fs.file-max (sysctl) or close files",
    };
  }
  return (
    MORE_ERRNOS.get(negErrno) ?? {
      code: getSystemErrorName(negErrno),
      message: getSystemErrorMessage(negErrno),
    }
  );
}

/** Number of open file descriptors in this process (for leak checks in tests). */
export function openFileDescriptors(): number {
  return native().sio_count_fds();
}
