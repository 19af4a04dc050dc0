import type { Task } from "../../src/task/index.ts";

/** How a ScriptedTask misbehaves; all optional. */
export interface Script {
  /** Outputs queued on every tick. */
  tickOutputs?: number;
  /** onEvent throws when given this payload. */
  throwOnEvent?: number;
  /** onTick throws. */
  throwOnTick?: boolean;
  /** popOutput throws on its N-th call (1-based). */
  throwOnPop?: number;
}

/**
 * A deterministic test task: an event with payload p queues p % 4 outputs, a tick queues
 * `tickOutputs`, shutdown queues one goodbye and makes the task empty once drained.
 */
export class ScriptedTask implements Task<number, string> {
  readonly queue: string[] = [];
  #pops = 0;
  #shuttingDown = false;

  constructor(
    readonly id: string,
    readonly script: Script = {},
  ) {}

  onTick(now: number): void {
    if (this.script.throwOnTick) throw new Error(`${this.id} tick failure`);
    for (let k = 0; k < (this.script.tickOutputs ?? 0); k++)
      this.queue.push(`${this.id}:t${now}.${k}`);
  }

  onEvent(_now: number, input: number): void {
    if (input === this.script.throwOnEvent) throw new Error(`${this.id} refuses ${input}`);
    for (let k = 0; k < input % 4; k++) this.queue.push(`${this.id}:e${input}.${k}`);
  }

  onShutdown(): void {
    this.#shuttingDown = true;
    this.queue.push(`${this.id}:bye`);
  }

  popOutput(): string | undefined {
    this.#pops++;
    if (this.#pops === this.script.throwOnPop) throw new Error(`${this.id} pop failure`);
    return this.queue.shift();
  }

  isEmpty(): boolean {
    return this.#shuttingDown && this.queue.length === 0;
  }

  emptyEvent(): string {
    return `${this.id}:empty`;
  }
}
