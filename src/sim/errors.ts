/** The errors the simulator and the fault middleware report, as the real backends word them. */
import { getSystemErrorMessage } from "node:util";
import type { IoError } from "../io/events.ts";

/** Linux errno numbers of the errors the simulation produces. */
const ERRNOS = {
  EAGAIN: 11,
  EBADF: 9,
  EBADFD: 77,
  EEXIST: 17,
  EINVAL: 22,
  EMSGSIZE: 90,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  EHOSTUNREACH: 113,
  ECONNREFUSED: 111,
} as const;

/** An errno name the simulation can report. */
export type SimErrno = keyof typeof ERRNOS;

/**
 * The `IoError` for `code`: with `message` when given (what the backends say for their own
 * checks, "socket 3 is not open"), else the system's text for the errno, as the real backends
 * report kernel errors ("address already in use").
 */
export function simError(code: SimErrno, message?: string): IoError {
  return { code, message: message ?? getSystemErrorMessage(-ERRNOS[code]) };
}
