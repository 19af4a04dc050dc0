/**
 * Task addresses: which worker, which group (task kind), which slot and which generation of that
 * slot. A value: it stays correct however long it is kept, and it never names the task that
 * later takes the same slot (the generation differs).
 */

/** Bits of each field in the packed form (52 bits: a safe integer). */
const WORKER_BITS = 8;
const GROUP_BITS = 8;
const SLOT_BITS = 20;
const GENERATION_BITS = 16;

/** Largest worker index, group index, slot and generation an address holds. */
export const ADDRESS_LIMITS = Object.freeze({
  workers: 2 ** WORKER_BITS,
  groups: 2 ** GROUP_BITS,
  slots: 2 ** SLOT_BITS,
  generations: 2 ** GENERATION_BITS,
});

const SLOT_SHIFT = 2 ** GENERATION_BITS;
const GROUP_SHIFT = SLOT_SHIFT * 2 ** SLOT_BITS;
const WORKER_SHIFT = GROUP_SHIFT * 2 ** GROUP_BITS;

/**
 * The address of one task. `id` packs the four fields into one safe integer: the form that
 * travels on the bus and keys tables; `TaskAddress.of(id)` turns it back. To put an address in a
 * message, put its `id` (the bus codec carries plain data, not class instances).
 */
export class TaskAddress {
  /** The packed form. */
  readonly id: number;

  /** An address; throws a RangeError when a field is out of its range (`ADDRESS_LIMITS`). */
  constructor(
    readonly worker: number,
    readonly group: number,
    readonly slot: number,
    readonly generation: number,
  ) {
    field("worker", worker, ADDRESS_LIMITS.workers);
    field("group", group, ADDRESS_LIMITS.groups);
    field("slot", slot, ADDRESS_LIMITS.slots);
    field("generation", generation, ADDRESS_LIMITS.generations);
    this.id = worker * WORKER_SHIFT + group * GROUP_SHIFT + slot * SLOT_SHIFT + generation;
    Object.freeze(this);
  }

  /** The address packed as `id`; throws a RangeError when `id` is not one. */
  static of(id: number): TaskAddress {
    if (!isAddressId(id)) {
      throw new RangeError(`${String(id)} is not a task address id`);
    }
    return new TaskAddress(workerOf(id), groupOf(id), slotOf(id), generationOf(id));
  }

  /** True when `other` names the same task. */
  equals(other: TaskAddress): boolean {
    return other.id === this.id;
  }

  /** "w0/g1/s3#2": worker, group, slot, generation. */
  toString(): string {
    return `w${this.worker}/g${this.group}/s${this.slot}#${this.generation}`;
  }
}

/** True when `id` can be a task address's packed id (what `TaskAddress.of` takes). */
export function isAddressId(id: unknown): id is number {
  return (
    Number.isSafeInteger(id) &&
    (id as number) >= 0 &&
    (id as number) < WORKER_SHIFT * ADDRESS_LIMITS.workers
  );
}

/** The worker index of a packed address, without making the address. */
export function workerOf(id: number): number {
  return Math.floor(id / WORKER_SHIFT);
}

/** The packed address of a task without making the object (for the worker's hot path). */
export function packAddress(
  worker: number,
  group: number,
  slot: number,
  generation: number,
): number {
  return worker * WORKER_SHIFT + group * GROUP_SHIFT + slot * SLOT_SHIFT + generation;
}

/** The group of a packed address. */
export function groupOf(id: number): number {
  return Math.floor(id / GROUP_SHIFT) % ADDRESS_LIMITS.groups;
}

/** The slot of a packed address. */
export function slotOf(id: number): number {
  return Math.floor(id / SLOT_SHIFT) % ADDRESS_LIMITS.slots;
}

/** The generation of a packed address. */
export function generationOf(id: number): number {
  return id % SLOT_SHIFT;
}

function field(name: string, value: number, limit: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= limit) {
    throw new RangeError(
      `task address ${name} must be an integer in 0..${limit - 1}, not ${value}`,
    );
  }
}
