/** What a grouped spawn config holds, and reading one defensively. */
import type { Structured } from "../bus/codec.ts";
import { isAddressId } from "./address.ts";

/** A spawn config of a grouped worker: the kind, its config and the controller's ticket. */
export interface GroupedSpawn {
  readonly task: string;
  readonly config?: Structured;
  readonly ticket?: number;
  /** The spawning task's address id and its tag, when a task asked for the outcome. */
  readonly parent?: number;
  readonly tag?: number;
}

/** A spawn config as read: the kind asked for, its config, and who wants the outcome. */
export interface Spawn {
  readonly task: unknown;
  readonly config: Structured;
  /** The controller's ticket (`Controller.spawnTask`). */
  readonly ticket: number | undefined;
  /** The spawning task's address id and tag (a "spawn" output with a `tag`). */
  readonly parent: number | undefined;
  readonly tag: number | undefined;
}

/** Reads a spawn config defensively (it may come from a hand-written worker). */
export function readSpawn(config: Structured): Spawn {
  const s = (typeof config === "object" && config !== null ? config : {}) as Partial<GroupedSpawn>;
  return {
    task: s.task,
    config: s.config ?? null,
    ticket: typeof s.ticket === "number" ? s.ticket : undefined,
    parent: isAddressId(s.parent) ? s.parent : undefined,
    tag: typeof s.tag === "number" ? s.tag : undefined,
  };
}
