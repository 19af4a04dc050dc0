/** The task groups of a grouped worker: one `TaskGroup` per kind, and how a task gets a slot. */
import type { Structured } from "../bus/codec.ts";
import { TaskGroup } from "../task/group.ts";
import { ADDRESS_LIMITS, TaskAddress } from "./address.ts";
import { TaskRecord } from "./record.ts";
import type { AnyTask, TaskContext, TaskInput, TaskOutput } from "./task.ts";

/** The task kinds of a grouped worker, by name (their order is the groups' order). */
export type TaskKinds = Readonly<Record<string, (config: never, context: TaskContext) => AnyTask>>;

/** The tasks of one kind. */
export interface Group {
  readonly kind: string;
  readonly factory: TaskKinds[string];
  readonly tasks: TaskGroup<TaskInput, TaskOutput, TaskRecord>;
  /** The generation of each slot's current (or last) task. */
  readonly generations: number[];
  /** Each slot's task record, kept until the runtime has handled its end. */
  readonly records: (TaskRecord | undefined)[];
}

/** One group per kind, in order; throws a RangeError for none or more than 256. */
export function makeGroups(kinds: TaskKinds): Group[] {
  const groups = Object.entries(kinds).map(([kind, factory]) => ({
    kind,
    factory,
    tasks: new TaskGroup<TaskInput, TaskOutput, TaskRecord>(),
    generations: [],
    records: [],
  }));
  if (groups.length === 0) throw new RangeError("a grouped worker needs a task kind");
  if (groups.length > ADDRESS_LIMITS.groups) {
    throw new RangeError(`at most ${ADDRESS_LIMITS.groups} task kinds, not ${groups.length}`);
  }
  return groups;
}

/**
 * Makes a task of `group` (group `g` of worker `worker`) in its lowest free slot, with the
 * slot's next generation; returns its record, or why it could not (the slots are full, the
 * factory threw: nothing is left behind).
 */
export function startTask(
  group: Group,
  worker: number,
  g: number,
  config: Structured,
  now: number,
): TaskRecord | string {
  // the slot first (the address needs it), then the task
  const slot = group.tasks.add(new TaskRecord(new TaskAddress(worker, g, 0, 0), group.kind));
  if (slot >= ADDRESS_LIMITS.slots) {
    group.tasks.remove(slot);
    return `more than ${ADDRESS_LIMITS.slots} ${group.kind} tasks`;
  }
  while (group.generations.length <= slot) {
    // a new slot's generations start from the clock: a worker that replaces a dead one at the
    // same index does not hand out the dead one's addresses again (short of a 1 in 65,536 clash)
    group.generations.push(Math.floor(now) % ADDRESS_LIMITS.generations);
    group.records.push(undefined);
  }
  const generation = ((group.generations[slot] as number) + 1) % ADDRESS_LIMITS.generations;
  group.generations[slot] = generation;
  const record = new TaskRecord(new TaskAddress(worker, g, slot, generation), group.kind);
  group.tasks.set(slot, record);
  try {
    record.task = group.factory(config as never, {
      address: record.address,
      worker,
      kind: group.kind,
      now,
    });
  } catch (error) {
    group.tasks.remove(slot);
    record.alive = false;
    return `the ${group.kind} factory threw: ${String(error)}`;
  }
  group.records[slot] = record;
  return record;
}
