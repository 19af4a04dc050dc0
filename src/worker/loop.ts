import type { Backend, EventSink } from "../backend/backend.ts";
import { pickTcpStats } from "../backend/tcp.ts";
import type { Structured } from "../bus/codec.ts";
import type { BusEndpoint } from "../bus/endpoint.ts";
import type { BusMessage, SendResult } from "../bus/types.ts";
import type { NetEvent } from "../io/events.ts";
import {
  CONTROLLER_ENDPOINT,
  endpointOf,
  errorInfo,
  type FromWorker,
  type Roster,
  sendControl,
  type ToWorker,
} from "../runtime/protocol.ts";
import { LiveCell, type StatsWriter } from "../runtime/stats.ts";
import type { BusControl, BusVia, WorkerInner, WorkerOutput } from "./inner.ts";

/** What a `WorkerLoop` runs on. */
export interface WorkerLoopOptions {
  /** This worker's index. */
  readonly index: number;
  readonly inner: WorkerInner;
  /** This worker's bus endpoint (endpoint `index + 1`). */
  readonly endpoint: BusEndpoint;
  readonly roster: Roster;
  readonly stats: StatsWriter;
  /** Tick interval in ms; 0 disables ticks. */
  readonly tickMs: number;
  /** How often stats are published, in ms. */
  readonly statsMs: number;
  /** Monotonic milliseconds, the same clock in every worker. */
  readonly clock: () => number;
  /** Creates the backend, given the sink its events must go to. */
  readonly backend: (sink: EventSink) => Backend;
  /** CPU time this thread has used, in ms (user + system, syscalls included). */
  readonly cpuTime: () => number;
  /** This thread's JS heap size in bytes (array buffers included), as of its last collection. */
  readonly heapBytes: () => number;
  /** Heap size past which the worker ends itself (`HeapLimitError`); 0: no limit. */
  readonly maxHeapBytes: number;
}

/** A worker's heap grew past its `maxHeapMb`: the worker ends itself before it takes the process down. */
export class HeapLimitError extends Error {
  override readonly name = "HeapLimitError";
}

/** How often a worker with a heap limit checks its heap size, in ms. */
const HEAP_CHECK_MS = 100;
/** Longest a backend's close waits for operations in flight (see `Backend.close`), with margin. */
const BACKEND_CLOSE_MS = 2500;

/** Most non-fatal error reports sent to the controller per stats interval (the rest are counted). */
const ERROR_REPORTS_PER_WINDOW = 20;
const TO_CONTROLLER = { safe: true, uncapped: true } as const;

/**
 * The worker loop (docs/design.md): drain the bus, fire the tick, publish stats, then wait in
 * the backend until the next deadline, an I/O event or a bus wake-up. Every input is given to the
 * inner and all its outputs are popped and carried out before the next input.
 *
 * Exceptions thrown by the inner propagate out of `run()`: they are fatal for the worker.
 * Outputs the runtime cannot carry out (an unknown kind, a bad worker index) are reported to the
 * controller as errors and skipped.
 */
export class WorkerLoop {
  /** The backend, created by the constructor. */
  readonly backend: Backend;
  readonly #o: WorkerLoopOptions;
  readonly #inner: WorkerInner;
  readonly #endpoint: BusEndpoint;
  #now = 0;
  #stopping = false;
  #dead = false;
  // counters; loops, inputs and outputs are also stored in shared memory as they change (LiveCell)
  readonly #live: Float64Array;
  #loops = 0;
  #eventsIn = 0;
  #eventsOut = 0;
  #taskErrors = 0;
  #spawnsHandled = 0;
  #dropped = 0;
  // stats window
  #windowStart = 0;
  #windowIn = 0;
  #windowOut = 0;
  #windowCpu = 0;
  #errorReports = 0;
  #utilisation = 0;
  #inPerSec = 0;
  #outPerSec = 0;
  /** True while waiting in the backend and no event has refreshed `#now` yet. */
  #waiting = false;
  // reused input objects (valid until their outputs are popped)
  readonly #net: { kind: "net"; owner: number; event: NetEvent };
  readonly #bus: { kind: "bus"; from: number; via: BusVia; channel: number; data: Structured };
  readonly #ext: { kind: "external"; data: Structured } = { kind: "external", data: undefined };
  #peers: number[] = [];
  #rosterVersion = -1;
  #cappedSeen = 0;

  /** Prepares the loop and creates its backend. */
  constructor(options: WorkerLoopOptions) {
    this.#o = options;
    this.#inner = options.inner;
    this.#endpoint = options.endpoint;
    this.#net = { kind: "net", owner: 0, event: { kind: "udp-closed", socket: -1 } };
    this.#bus = { kind: "bus", from: 0, via: "direct", channel: -1, data: undefined };
    this.#live = options.stats.live;
    this.backend = options.backend(this.#onNet);
  }

  /**
   * Runs until a graceful shutdown has completed (the inner is empty after `onShutdown`).
   * The backend stays open; call `close()` afterwards.
   */
  run(): void {
    const { clock, tickMs, statsMs } = this.#o;
    const inner = this.#inner;
    const endpoint = this.#endpoint;
    let now = clock();
    this.#now = now;
    this.#windowStart = now;
    this.#windowCpu = this.#o.cpuTime();
    this.#drain(now); // outputs the factory queued (opening sockets, first messages)
    this.#publish(now);
    let nextTick = tickMs > 0 ? now + tickMs : Number.POSITIVE_INFINITY;
    let nextStats = now + statsMs;
    const maxHeap = this.#o.maxHeapBytes;
    let nextHeapCheck = maxHeap > 0 ? now : Number.POSITIVE_INFINITY;
    const live = this.#live;
    for (;;) {
      live[LiveCell.loops] = ++this.#loops;
      // the clock before the bus: what arrives while the worker slept is handled at its time
      now = clock();
      this.#now = now;
      endpoint.poll(this.#onBus);
      if (now >= nextTick) {
        inner.onTick(now);
        this.#drain(now);
        nextTick += tickMs;
        if (nextTick <= now) nextTick = now + tickMs; // fell behind: skip, do not burst
      }
      if (inner.nextDeadline !== undefined && now >= inner.nextDeadline()) {
        inner.onDeadline?.(now);
        this.#drain(now);
      }
      if (this.#stopping && inner.isEmpty()) break;
      if (now >= nextStats) {
        this.#publish(now);
        nextStats = now + statsMs;
      }
      if (now >= nextHeapCheck) {
        this.#checkHeap(maxHeap);
        nextHeapCheck = now + HEAP_CHECK_MS;
      }
      endpoint.flush();
      const sleep = endpoint.prepareWait();
      const wake = Math.min(
        nextTick,
        nextStats,
        nextHeapCheck,
        inner.nextDeadline?.() ?? Number.POSITIVE_INFINITY,
      );
      const timeout = sleep ? Math.max(0, Math.ceil(wake - clock())) : 0;
      live[LiveCell.parkedUntil] = timeout > 0 ? clock() + timeout : 0;
      this.#waiting = true;
      try {
        this.backend.poll(timeout);
      } finally {
        this.#waiting = false;
      }
      live[LiveCell.parkedUntil] = 0;
      endpoint.endWait();
    }
    this.publishStats();
  }

  /** Writes the stats block now (the host calls it when the worker ends, whatever the cause). */
  publishStats(): void {
    this.#publish(this.#now);
  }

  #checkHeap(max: number): void {
    const heap = this.#o.heapBytes();
    if (heap > max) {
      throw new HeapLimitError(
        `heap of ${Math.round(heap / 2 ** 20)} MiB is past this worker's limit of ${Math.round(max / 2 ** 20)} MiB (maxHeapMb): a task keeps too much; the worker ends rather than take the process down`,
      );
    }
  }

  /**
   * Closes the backend (every socket, waiting up to 2 s for operations in flight); events it
   * still delivers are ignored. The wait is announced as a sleep, so the watchdog does not take
   * it for a stall.
   */
  close(): void {
    this.#dead = true;
    this.#live[LiveCell.parkedUntil] = this.#o.clock() + BACKEND_CLOSE_MS;
    this.backend.close();
  }

  /** Sends a control message to the controller (never dropped). */
  report(message: FromWorker): void {
    sendControl(this.#endpoint, CONTROLLER_ENDPOINT, message);
  }

  readonly #onNet = (owner: number, event: NetEvent): void => {
    if (this.#dead) return;
    if (this.#waiting) {
      // the first event after a wait: time has moved on (one clock read per batch of events),
      // and the bus first: what another worker did before its packet reached us (subscribing to
      // a channel, say) is seen before the packet is handled
      this.#waiting = false;
      this.#now = this.#o.clock();
      this.#endpoint.poll(this.#onBus);
    }
    const input = this.#net;
    input.owner = owner;
    input.event = event;
    this.#live[LiveCell.eventsIn] = ++this.#eventsIn;
    this.#inner.onEvent(this.#now, input);
    this.#drain(this.#now);
  };

  readonly #onBus = (m: BusMessage): void => {
    const now = this.#now;
    if (m.from === CONTROLLER_ENDPOINT) {
      if (m.kind === "external") {
        this.#ext.data = m.data;
        this.#live[LiveCell.eventsIn] = ++this.#eventsIn;
        this.#inner.onEvent(now, this.#ext);
        this.#drain(now);
      } else if (m.kind === "direct" && !m.raw) {
        this.#control(now, m.data as ToWorker);
      } else if (m.kind === "direct") {
        // messages and calls for a grouped worker's tasks (`Controller.sendToTask`, `call`)
        this.#busInput(m, "direct");
      } else {
        this.#reportError(new TypeError(`unexpected ${m.kind} message from the controller`));
      }
      return;
    }
    if (m.kind === "external") {
      this.#reportError(new TypeError(`unexpected external message from endpoint ${m.from}`));
      return;
    }
    this.#busInput(m, m.kind);
  };

  /** `m`, sent `via`, as a "bus" input (from worker -1: the controller). */
  #busInput(m: BusMessage, via: BusVia): void {
    const input = this.#bus;
    input.from = m.from - 1;
    input.via = via;
    input.channel = m.channel;
    input.data = m.data;
    this.#live[LiveCell.eventsIn] = ++this.#eventsIn;
    this.#inner.onEvent(this.#now, input);
    this.#drain(this.#now);
  }

  #control(now: number, message: ToWorker): void {
    switch (message?.op) {
      case "spawn":
        if (this.#stopping) {
          // the controller tells whoever asked for it (a ticket, a task's tag), or reports it
          this.report({
            op: "spawn-refused",
            config: message.config,
            why: `worker ${this.#o.index} is shutting down`,
          });
          return;
        }
        this.#live[LiveCell.eventsIn] = ++this.#eventsIn;
        this.#inner.spawn(now, message.config);
        this.#drain(now);
        this.#spawnsHandled++;
        this.#publish(now); // placement reads the task count: keep it current
        return;
      case "shutdown":
        if (this.#stopping) return;
        this.#stopping = true;
        this.#inner.onShutdown(now);
        this.#drain(now);
        return;
      case "peer-down":
        this.#endpoint.closePeer(endpointOf(message.worker));
        this.#live[LiveCell.eventsIn] = ++this.#eventsIn;
        this.#inner.onEvent(now, { kind: "peer-down", worker: message.worker });
        this.#drain(now);
        return;
      case "tasks":
        this.#live[LiveCell.eventsIn] = ++this.#eventsIn;
        this.#inner.onEvent(now, { kind: "tasks", message: message.message });
        this.#drain(now);
        return;
      default:
        this.#reportError(new TypeError(`unknown control message ${JSON.stringify(message)}`));
    }
  }

  #drain(now: number): void {
    const inner = this.#inner;
    const live = this.#live;
    for (let out = inner.popOutput(now); out !== undefined; out = inner.popOutput(now)) {
      live[LiveCell.eventsOut] = ++this.#eventsOut;
      try {
        this.#apply(out);
      } catch (e) {
        if (inner.outputFailed?.(now, e) !== true) this.#reportError(e);
      }
    }
  }

  #apply(out: WorkerOutput): void {
    switch (out.kind) {
      case "net":
        this.backend.act(out.owner, out.action);
        return;
      case "bus":
        this.#busControl(out.control);
        return;
      case "external":
        this.#sent(
          CONTROLLER_ENDPOINT,
          this.#endpoint.sendExternal(CONTROLLER_ENDPOINT, out.data, { safe: true }),
        );
        return;
      case "spawn":
        this.report({ op: "spawn", config: out.config });
        return;
      case "task-error":
        this.#taskErrors++;
        this.report({ op: "task-error", task: String(out.task), error: errorInfo(out.error) });
        return;
      case "tasks":
        this.report({ op: "tasks", message: out.message });
        return;
      default:
        throw new TypeError(`unknown output kind ${String((out as { kind: unknown }).kind)}`);
    }
  }

  #busControl(c: BusControl): void {
    const endpoint = this.#endpoint;
    switch (c.op) {
      case "subscribe":
        endpoint.subscribe(c.channel);
        return;
      case "unsubscribe":
        endpoint.unsubscribe(c.channel);
        return;
      case "publish":
        endpoint.publish(c.channel, c.data, { safe: c.safe !== false });
        this.#cappedSince();
        return;
      case "broadcast":
        endpoint.broadcast(c.data, { safe: c.safe !== false, to: this.#reachablePeers() });
        this.#cappedSince();
        return;
      case "direct": {
        if (c.worker === -1) {
          // a grouped worker's record for the controller (its tasks' messages and answers):
          // never dropped, as the runtime's own reports are not
          endpoint.send(CONTROLLER_ENDPOINT, c.data, TO_CONTROLLER);
          return;
        }
        const roster = this.#o.roster;
        if (!Number.isInteger(c.worker) || c.worker < 0 || c.worker >= roster.size) {
          throw new RangeError(`no worker ${c.worker} (workers are 0..${roster.size - 1})`);
        }
        if (!roster.isReachable(c.worker) && c.worker !== this.#o.index) {
          this.#dropped++;
          return;
        }
        const dest = endpointOf(c.worker);
        this.#sent(dest, endpoint.send(dest, c.data, { safe: c.safe !== false }));
        return;
      }
      default:
        throw new TypeError(`unknown bus op ${String((c as { op: unknown }).op)}`);
    }
  }

  /** Reports a safe send its destination's queue cap refused (counted in the endpoint's stats). */
  #sent(dest: number, result: SendResult): void {
    if (result === "capped") this.#reportCapped(dest);
  }

  /** After a publish or broadcast: reports the destinations whose cap refused it, if any. */
  #cappedSince(): void {
    const capped = this.#endpoint.cappedSends;
    if (capped === this.#cappedSeen) return;
    this.#cappedSeen = capped;
    let fullest = 0;
    for (let dest = 1; dest < this.#endpoint.endpoints; dest++) {
      if (this.#endpoint.queuedBytes(dest) > this.#endpoint.queuedBytes(fullest)) fullest = dest;
    }
    this.#reportCapped(fullest);
  }

  #reportCapped(dest: number): void {
    this.#cappedSeen = this.#endpoint.cappedSends;
    const who = dest === CONTROLLER_ENDPOINT ? "the controller" : `worker ${dest - 1}`;
    const error = new Error(
      `bus message to ${who} refused: ${this.#endpoint.queuedBytes(dest)} bytes already wait for it (maxQueuedBytes); it is not keeping up (busy, or stalled) — send less, or raise maxQueuedBytes`,
    );
    error.name = "BusQueueCapped";
    this.#reportError(error);
  }

  /** Every other worker that takes messages (a stalled one queues them, up to the cap). */
  #reachablePeers(): number[] {
    const roster = this.#o.roster;
    if (roster.version !== this.#rosterVersion) {
      this.#rosterVersion = roster.version;
      this.#peers = roster
        .reachable()
        .filter((w) => w !== this.#o.index)
        .map(endpointOf);
    }
    return this.#peers;
  }

  #reportError(thrown: unknown): void {
    if (this.#errorReports++ < ERROR_REPORTS_PER_WINDOW) {
      this.report({ op: "error", error: errorInfo(thrown) });
    }
  }

  /** Writes the stats block; rates and utilisation are those of the last complete window. */
  #publish(now: number): void {
    const window = now - this.#windowStart;
    const eventsIn = this.#eventsIn;
    const eventsOut = this.#eventsOut;
    if (window >= this.#o.statsMs) {
      const cpu = this.#o.cpuTime();
      this.#utilisation = Math.min(1, Math.max(0, (cpu - this.#windowCpu) / window));
      this.#windowCpu = cpu;
      this.#inPerSec = ((eventsIn - this.#windowIn) * 1000) / window;
      this.#outPerSec = ((eventsOut - this.#windowOut) * 1000) / window;
      this.#windowStart = now;
      this.#windowIn = eventsIn;
      this.#windowOut = eventsOut;
      this.#errorReports = 0;
    }
    const b = this.backend.stats();
    const e = this.#endpoint.stats();
    let occupancy = 0;
    for (let dest = 0; dest < this.#endpoint.endpoints; dest++) {
      occupancy = Math.max(occupancy, this.#endpoint.occupancy(dest));
    }
    const endpoint = this.#endpoint;
    const counters = this.#inner.counters?.();
    this.#o.stats.write(
      {
        tasks: this.#inner.tasks(),
        spawnsHandled: this.#spawnsHandled,
        loopUtilisation: this.#utilisation,
        eventsInPerSec: this.#inPerSec,
        eventsOutPerSec: this.#outPerSec,
        ringOccupancy: occupancy,
        bufferExhaustion: b.bufferExhaustion,
        buffersOutstanding: b.buffersOutstanding,
        sendDrops: b.sendDrops,
        kernelDrops: b.kernelDrops,
        busDrops: e.full + e.undeliverable + e.capped + this.#dropped,
        busCapped: e.capped,
        busQueuedBytes: e.queuedBytes,
        heapBytes: this.#o.heapBytes(),
        taskErrors: this.#taskErrors,
        staleDrops: counters?.staleDrops ?? 0,
        lateReplies: counters?.lateReplies ?? 0,
        updatedAt: now,
        ...pickTcpStats((field) => b[field]),
      },
      (dest) => endpoint.queuedBytes(dest),
    );
  }
}
