/**
 * The controller's side of grouped workers: spawning a task and learning its address, messages
 * to a task by address, and calls (RPC) with a time-out.
 */
import { TaskAddress } from "../app/address.ts";
import type { Structured } from "../bus/codec.ts";
import type { FromTasks, ToTasks } from "../worker/inner.ts";

/** What sending to a worker did (`Controller.sendTo`'s result). */
export type TaskSendResult = "sent" | "queued" | "full" | "capped" | "closed" | "stalled";

/** A call failed: it timed out, its task or worker is gone, or the task answered with an error. */
export class CallError extends Error {
  override readonly name = "CallError";
}

/** A spawn of a task could not be done (unknown kind, a factory that threw, shutdown). */
export class SpawnError extends Error {
  override readonly name = "SpawnError";
}

/** What `TaskDesk` needs from its controller. */
export interface TaskDeskHost {
  /** Sends a spawn for a grouped worker to the least-loaded worker; returns its index. */
  spawn(config: Structured): number;
  /** Sends `message` to worker `worker`'s tasks. */
  send(worker: number, message: ToTasks): TaskSendResult;
  /** True while worker `worker` exists and has not stopped or died. */
  alive(worker: number): boolean;
}

interface Waiting<T> {
  readonly worker: number;
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
  readonly timer?: ReturnType<typeof setTimeout>;
}

/**
 * Contract: every promise it returns settles: with the answer, or with an error that says what
 * happened (time-out, task gone, worker gone, refused send) — never left pending. A reply that
 * comes after its call has timed out is dropped and counted (`lateReplies`).
 */
export class TaskDesk {
  /** Replies that came after their call had failed. */
  lateReplies = 0;
  readonly #host: TaskDeskHost;
  readonly #spawns = new Map<number, Waiting<TaskAddress>>();
  readonly #calls = new Map<number, Waiting<Structured>>();
  #next = 0;

  /** A desk sending through `host`. */
  constructor(host: TaskDeskHost) {
    this.#host = host;
  }

  /** Starts a task of kind `kind` on the least-loaded worker; resolves with its address. */
  spawn(kind: string, config: Structured): Promise<TaskAddress> {
    return new Promise((resolve, reject) => {
      const ticket = this.#ticket();
      const worker = this.#host.spawn({ task: kind, config, ticket });
      this.#spawns.set(ticket, { worker, resolve, reject });
    });
  }

  /** Sends `data` to the task at `to` (a "message" input with `from` null). */
  send(to: TaskAddress, data: Structured): TaskSendResult {
    if (!this.#host.alive(to.worker)) return "closed";
    return this.#host.send(to.worker, { op: "message", to: to.id, data });
  }

  /** Tells task `parent` that its spawn `tag` was not placed, and why (a "spawned" input). */
  refuseSpawn(parent: TaskAddress, tag: number, error: string): void {
    if (!this.#host.alive(parent.worker)) return;
    this.#host.send(parent.worker, { op: "spawned", to: parent.id, tag, error });
  }

  /**
   * Starts a task for task `parent` (its "spawn" output with `tag`) where `spawn` would; the
   * outcome goes to `parent` as a "spawned" input: the address, or why not (the spawn could not
   * be placed, was refused, failed, or its worker went first). Exactly one outcome is sent.
   */
  spawnFor(parent: TaskAddress, tag: number, task: unknown, config: Structured): void {
    const ticket = this.#ticket();
    const waiting = {
      resolve: (address: TaskAddress) => {
        if (!this.#host.alive(parent.worker)) return;
        this.#host.send(parent.worker, { op: "spawned", to: parent.id, tag, address: address.id });
      },
      reject: (error: Error) => this.refuseSpawn(parent, tag, error.message),
    };
    try {
      const worker = this.#host.spawn({ task: task as Structured, config, ticket });
      this.#spawns.set(ticket, { worker, ...waiting });
    } catch (e) {
      this.refuseSpawn(
        parent,
        tag,
        `spawn not placed: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }

  /**
   * Calls the task at `to`; resolves with its answer, or rejects with a `CallError` when it
   * times out (`timeoutMs`), the task or its worker is gone, or the send is refused.
   */
  call(to: TaskAddress, data: Structured, timeoutMs: number): Promise<Structured> {
    if (!(timeoutMs > 0)) throw new RangeError(`a call needs a time-out > 0 ms, not ${timeoutMs}`);
    if (!this.#host.alive(to.worker)) {
      return Promise.reject(new CallError(`call to ${to} failed: worker ${to.worker} is gone`));
    }
    return new Promise((resolve, reject) => {
      const call = this.#ticket();
      const result = this.#host.send(to.worker, { op: "call", call, to: to.id, data });
      if (result !== "sent" && result !== "queued") {
        reject(new CallError(`call to ${to} not sent: the send was ${result}`));
        return;
      }
      const timer = setTimeout(() => {
        if (!this.#calls.delete(call)) return;
        reject(new CallError(`call to ${to} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#calls.set(call, { worker: to.worker, resolve, reject, timer });
    });
  }

  /** Handles what worker `worker`'s tasks sent; returns a task message for the event stream. */
  receive(
    worker: number,
    message: FromTasks,
  ): { readonly from: TaskAddress; readonly data: Structured } | undefined {
    switch (message.op) {
      case "message":
        return { from: TaskAddress.of(message.from), data: message.data };
      case "reply": {
        const waiting = this.#calls.get(message.call);
        if (waiting === undefined || waiting.worker !== worker) {
          this.lateReplies++;
          return undefined;
        }
        this.#calls.delete(message.call);
        clearTimeout(waiting.timer);
        if (message.ok) waiting.resolve(message.data);
        else waiting.reject(new CallError(message.error));
        return undefined;
      }
      case "spawned": {
        const waiting = this.#take(this.#spawns, message.ticket);
        waiting?.resolve(TaskAddress.of(message.address));
        return undefined;
      }
      case "spawn-failed": {
        const waiting = this.#take(this.#spawns, message.ticket);
        waiting?.reject(new SpawnError(message.error));
        return undefined;
      }
    }
  }

  /** Worker `worker` stopped or died: what waits for it fails now. */
  workerGone(worker: number, why: string): void {
    for (const [ticket, w] of this.#spawns) {
      if (w.worker !== worker) continue;
      this.#spawns.delete(ticket);
      w.reject(new SpawnError(`spawn on worker ${worker} failed: ${why}`));
    }
    for (const [call, w] of this.#calls) {
      if (w.worker !== worker) continue;
      this.#calls.delete(call);
      clearTimeout(w.timer);
      w.reject(new CallError(`call to a task of worker ${worker} failed: ${why}`));
    }
  }

  #take<T>(map: Map<number, Waiting<T>>, ticket: number): Waiting<T> | undefined {
    const w = map.get(ticket);
    map.delete(ticket);
    return w;
  }

  #ticket(): number {
    const t = this.#next;
    this.#next = (this.#next + 1) % Number.MAX_SAFE_INTEGER;
    return t;
  }
}
