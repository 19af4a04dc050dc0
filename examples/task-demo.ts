/**
 * A simulated worker with two groups of sans-IO tasks, showing the order in which outputs are
 * popped: a tick drains every task of group 0, then every task of group 1; an event drains only
 * the task it was for; shutdown drains the goodbyes, then reports each group's empty event once.
 *
 *   bun examples/task-demo.ts
 */
import { type Task, TaskGroup, TaskSwitcher, TaskSwitcherBranch } from "bun-sansio";

/** A chat-like session: echoes each message back in upper case, says goodbye on shutdown. */
class Session implements Task<string, string> {
  readonly #out: string[] = [];
  #closing = false;
  constructor(readonly name: string) {}
  onTick(now: number): void {
    this.#out.push(`${this.name}: keepalive @${now}ms`);
  }
  onEvent(_now: number, message: string): void {
    this.#out.push(`${this.name}: ${message.toUpperCase()}`);
    if (message.endsWith("!")) this.#out.push(`${this.name}: (that one was loud)`);
  }
  onShutdown(): void {
    this.#closing = true;
    this.#out.push(`${this.name}: bye`);
  }
  popOutput(): string | undefined {
    return this.#out.shift();
  }
  isEmpty(): boolean {
    return this.#closing && this.#out.length === 0;
  }
  emptyEvent(): string {
    return `${this.name}: closed`;
  }
}

/** Counts packets and reports the count on every tick. */
class Meter implements Task<number, string> {
  #packets = 0;
  #report: string | undefined;
  #closing = false;
  constructor(readonly name: string) {}
  onTick(now: number): void {
    this.#report = `${this.name}: ${this.#packets} packets @${now}ms`;
  }
  onEvent(_now: number, packets: number): void {
    this.#packets += packets;
  }
  onShutdown(): void {
    this.#closing = true;
  }
  popOutput(): string | undefined {
    const report = this.#report;
    this.#report = undefined;
    return report;
  }
  isEmpty(): boolean {
    return this.#closing;
  }
  emptyEvent(): string {
    return `${this.name}: stopped`;
  }
}

const switcher = new TaskSwitcher(2);
const sessions = new TaskSwitcherBranch(new TaskGroup<string, string>(), 0);
const meters = new TaskSwitcherBranch(new TaskGroup<number, string>(), 1);
const branches = [sessions, meters] as const;

for (const name of ["alice", "bob", "carol"]) sessions.child.add(new Session(name));
for (const name of ["rx-meter", "tx-meter"]) meters.child.add(new Meter(name));

/** Pops every output of the worker, in switcher order, and prints it. */
function drain(now: number): void {
  for (let g = switcher.current(); g !== undefined; g = switcher.current()) {
    const out = branches[g]?.popOutput(now, switcher);
    if (out === undefined) continue;
    const where = g === 0 ? "sessions" : "meters  ";
    if (out.kind === "empty") console.log(`  [${where}] group is empty`);
    else if (out.kind === "error")
      console.log(`  [${where}] task ${out.index} failed: ${out.error}`);
    else console.log(`  [${where}] task ${out.index} ${out.kind.padEnd(8)} ${out.value}`);
  }
}

console.log("tick @0ms: every task of group 0, then every task of group 1");
for (const b of branches) b.input(switcher).onTick(0);
drain(0);

console.log("event for bob @5ms: only bob is drained");
sessions.input(switcher).onEvent(5, 1, "hello!");
drain(5);

console.log("event for rx-meter @6ms: it queues nothing until the next tick");
meters.input(switcher).onEvent(6, 0, 42);
drain(6);

console.log("event for a task that does not exist @7ms:", sessions.child.onEvent(7, 9, "?"));

console.log("tick @10ms");
for (const b of branches) b.input(switcher).onTick(10);
drain(10);

console.log("shutdown @20ms: goodbyes, each task's empty event, then each group's, once");
for (const b of branches) b.input(switcher).onShutdown(20);
drain(20);
console.log(
  `done: ${sessions.child.size + meters.child.size} tasks left, worker empty = ${branches.every((b) => b.isEmpty())}`,
);
