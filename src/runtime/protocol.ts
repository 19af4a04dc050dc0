/**
 * What the controller and its workers tell each other besides application messages.
 *
 * Endpoint 0 of the bus is the controller; worker `i` is endpoint `i + 1`. Application messages
 * between the controller and a worker travel as bus "external" messages; the runtime's own
 * control messages below travel as "direct" ones.
 */
import type { Backend } from "../backend/backend.ts";
import type { BackendKind, TcpOptions } from "../backend/index.ts";
import type { Structured } from "../bus/codec.ts";
import type { BusEndpoint } from "../bus/endpoint.ts";
import type { BusLayout } from "../bus/layout.ts";
import { RecordTooLargeError } from "../ring/errors.ts";
import type { FromTasks, ToTasks } from "../worker/inner.ts";

/** The bus endpoint of the controller. */
export const CONTROLLER_ENDPOINT = 0;

/** The bus endpoint of worker `index`. */
export function endpointOf(index: number): number {
  return index + 1;
}

/** An error as it crosses threads. */
export interface ErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/** Longest message and stack an `ErrorInfo` carries (longer ones are cut, and say so). */
const MAX_MESSAGE = 2000;
const MAX_STACK = 8000;

function cut(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}... (${text.length - max} more characters)`;
}

/**
 * Turns anything thrown into an `ErrorInfo`, with message and stack cut to a size that always
 * crosses the bus (a report must never be refused for its size).
 */
export function errorInfo(thrown: unknown): ErrorInfo {
  if (thrown instanceof Error) {
    const name = cut(String(thrown.name), 100);
    const message = cut(String(thrown.message), MAX_MESSAGE);
    return thrown.stack === undefined
      ? { name, message }
      : { name, message, stack: cut(thrown.stack, MAX_STACK) };
  }
  let message: string;
  try {
    message = String(thrown);
  } catch {
    message = "an unprintable value";
  }
  return { name: "Error", message: cut(message, MAX_MESSAGE) };
}

/** Everything a worker thread needs to start, posted once by the controller. */
export interface WorkerInit {
  readonly sansio: "init";
  readonly index: number;
  readonly moduleUrl: string;
  readonly exportName: string;
  readonly config: Structured;
  readonly tickMs: number;
  readonly statsMs: number;
  readonly backend: BackendKind;
  readonly cpu: number | undefined;
  readonly recvBuffers: number | undefined;
  readonly recvBufferSize: number | undefined;
  readonly tcp: TcpOptions | undefined;
  readonly layout: BusLayout;
  /** Per-destination cap of the worker's bus endpoint (see `BusEndpointOptions.maxQueuedBytes`). */
  readonly maxQueuedBytes: number;
  /** Heap size (bytes) past which the worker ends itself with a `HeapLimitError`; 0: no limit. */
  readonly maxHeapBytes: number;
  /** Where the worker records its traffic (a pcap file), or undefined. */
  readonly pcap: string | undefined;
  /** Whether received payloads are guarded (`PayloadGuard`). */
  readonly checkPayloads: boolean;
  /** The native ledger owner the worker thread records its fds under. */
  readonly ledgerOwner: number;
  readonly stats: SharedArrayBuffer;
  readonly roster: SharedArrayBuffer;
  /** `performance.timeOrigin` of the controller: `now` is milliseconds since then. */
  readonly epoch: number;
}

/** True when a posted message is a `WorkerInit`. */
export function isWorkerInit(data: unknown): data is WorkerInit {
  return typeof data === "object" && data !== null && (data as WorkerInit).sansio === "init";
}

/** Control messages from the controller to a worker. */
export type ToWorker =
  | { readonly op: "spawn"; readonly config: Structured }
  | { readonly op: "shutdown" }
  /** Worker `worker` is gone: stop sending to it. */
  | { readonly op: "peer-down"; readonly worker: number }
  /** For the worker's tasks (a grouped worker). */
  | { readonly op: "tasks"; readonly message: ToTasks };

/** Control messages from a worker to the controller. */
export type FromWorker =
  | { readonly op: "ready"; readonly backend: Backend["kind"] }
  | { readonly op: "spawn"; readonly config: Structured }
  /** A spawn sent to this worker was not handled (it is shutting down), and `why`. */
  | { readonly op: "spawn-refused"; readonly config: Structured; readonly why: string }
  | { readonly op: "task-error"; readonly task: string; readonly error: ErrorInfo }
  /** Something went wrong that did not stop the worker (a bad output, a corrupt bus leg). */
  | { readonly op: "error"; readonly error: ErrorInfo }
  /** The worker is about to exit because of `error`. */
  | { readonly op: "fatal"; readonly error: ErrorInfo }
  /** Graceful shutdown finished; the worker is exiting. */
  | { readonly op: "stopped" }
  /** From the worker's tasks (a grouped worker). */
  | { readonly op: "tasks"; readonly message: FromTasks };

/**
 * Sends a runtime control message (a "direct" bus message, never dropped) from `endpoint` to
 * `dest`: the controller to a worker, or a worker to the controller.
 */
export function sendControl(
  endpoint: BusEndpoint,
  dest: number,
  message: ToWorker | FromWorker,
): void {
  try {
    endpoint.send(dest, message as unknown as Structured, CONTROL);
  } catch (e) {
    // an error report too large for a small bus: send it without its stack, its message cut
    if (!(e instanceof RecordTooLargeError) || !("error" in message)) throw e;
    const error = { name: message.error.name, message: cut(message.error.message, 200) };
    endpoint.send(dest, { ...message, error } as unknown as Structured, CONTROL);
  }
}

const CONTROL = { safe: true, uncapped: true } as const;

/**
 * Worker states in the roster: not started yet, running, gone (stopped or died), or stalled (the
 * watchdog saw no progress: other workers stop sending to it until it recovers).
 */
export const RosterState = { Absent: 0, Running: 1, Gone: 2, Stalled: 3 } as const;

/** One of the `RosterState` values. */
export type RosterState = (typeof RosterState)[keyof typeof RosterState];

/**
 * Which workers are running, shared by the controller (writer) and the workers (readers), with
 * a version counter so readers recompute derived lists only when it changes.
 */
export class Roster {
  readonly #cells: Int32Array;

  /** Allocates a roster for `workers` workers. */
  static create(workers: number): SharedArrayBuffer {
    return new SharedArrayBuffer(4 * (workers + 1));
  }

  /** Opens a roster made by `Roster.create`. */
  constructor(block: SharedArrayBuffer) {
    this.#cells = new Int32Array(block);
  }

  /** Number of workers the roster has room for. */
  get size(): number {
    return this.#cells.length - 1;
  }

  /** Changes with every `set`. */
  get version(): number {
    return Atomics.load(this.#cells, 0);
  }

  /** The state of worker `index` (Absent for indices out of range). */
  state(index: number): RosterState {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) return RosterState.Absent;
    return Atomics.load(this.#cells, index + 1) as RosterState;
  }

  /** Sets the state of worker `index` (controller only). */
  set(index: number, state: RosterState): void {
    Atomics.store(this.#cells, index + 1, state);
    Atomics.add(this.#cells, 0, 1);
  }

  /** Indices of the workers that take messages: running, or stalled (they may recover). */
  reachable(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.isReachable(i)) out.push(i);
    return out;
  }

  /** True when worker `index` takes messages: running, or stalled (queued, up to the cap). */
  isReachable(index: number): boolean {
    const state = this.state(index);
    return state === RosterState.Running || state === RosterState.Stalled;
  }
}
