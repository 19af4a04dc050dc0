/**
 * The runtime's record of one live task of the grouped worker: the application's task, its
 * address, and everything the runtime must undo when it ends (sockets, devices, channels, timer,
 * calls it owes an answer).
 */
import type { Task } from "../task/task.ts";
import type { TaskAddress } from "./address.ts";
import type { AnyTask, TaskInput, TaskOutput } from "./task.ts";

/** What a record's `emptyEvent` yields: the group drain's sign that the task has finished. */
const FINISHED: TaskOutput = Object.freeze({ kind: "timer", at: Number.NaN });

/**
 * One task in its `TaskGroup` slot. Ids of sockets and devices are the task's own (`local`);
 * the runtime maps each to a worker-wide id (`global`) for the backend.
 */
export class TaskRecord implements Task<TaskInput, TaskOutput> {
  /** The application's task (set once the factory has returned). */
  task: AnyTask | undefined;
  /** Socket ids: the task's own → the backend's. */
  readonly sockets = new Map<number, number>();
  /** Device ids: the task's own → the backend's. */
  readonly devices = new Map<number, number>();
  /** TCP listener ids: the task's own → the backend's. */
  readonly listeners = new Map<number, number>();
  /**
   * TCP connection ids: the task's own → the backend's (accepted connections keep the negative
   * id the backend gave them on both sides).
   */
  readonly conns = new Map<number, number>();
  /** Channels it subscribes to. */
  readonly channels = new Set<number>();
  /** Calls it was given and has not answered (handles). */
  readonly owed = new Set<number>();
  /** When its timer is due (Infinity: none). */
  timerAt = Number.POSITIVE_INFINITY;
  /** The earliest entry it has in the worker's deadline heap (Infinity: none). */
  heapAt = Number.POSITIVE_INFINITY;
  /** The last batch of local inputs it was given one of (the worker's count). */
  batch = 0;
  /** False once it has ended: what still arrives for it is stale. */
  alive = true;

  /**
   * @param address its address
   * @param kind the kind name it was spawned as
   */
  constructor(
    readonly address: TaskAddress,
    readonly kind: string,
  ) {}

  /** "kind w0/g1/s3#2", how reports name it. */
  get name(): string {
    return `${this.kind} ${this.address}`;
  }

  onTick(now: number): void {
    this.task?.onTick?.(now);
  }

  onEvent(now: number, input: TaskInput): void {
    this.task?.onEvent(now, input as never);
  }

  onShutdown(now: number): void {
    this.task?.onShutdown(now);
  }

  popOutput(now: number): TaskOutput | undefined {
    return this.task?.popOutput(now) as TaskOutput | undefined;
  }

  isEmpty(): boolean {
    return this.task?.isEmpty() ?? false;
  }

  emptyEvent(): TaskOutput {
    return FINISHED;
  }
}
