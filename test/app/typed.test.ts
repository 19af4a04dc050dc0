/**
 * Typed messages: plain interfaces without index signatures are accepted where the bus carries
 * them, and what it cannot carry is a compile-time error (the `@ts-expect-error` lines below
 * fail `tsc` if the error goes away) or, behind a cast, a runtime TypeError naming the path.
 */
import { describe, expect, test } from "bun:test";
import type { AppTask, Controller, TaskAddress, TaskInput, TaskOutput } from "../../src/index.ts";
import { lab } from "../controller/lab.ts";
import { PROBES } from "./reports.ts";

interface Say {
  readonly op: "say";
  text: string;
  at?: number;
  bytes: Uint8Array;
  tags: readonly string[];
}
type Room = Say | { readonly op: "join"; readonly room: string };

/** A task typed by its message union, without an index signature anywhere. */
class Typed implements AppTask<Room> {
  #out: TaskOutput<Room>[] = [];
  onEvent(_now: number, input: TaskInput<Room>): void {
    if (input.kind === "message" && input.data.op === "join") {
      this.#out.push({ kind: "controller", data: { op: "join", room: input.data.room } });
    }
  }
  popOutput(): TaskOutput<Room> | undefined {
    return this.#out.shift();
  }
  isEmpty(): boolean {
    return false;
  }
  onShutdown(): void {}
}

interface WithFunction {
  readonly op: "f";
  readonly run: () => void;
}

class Untyped implements AppTask<WithFunction> {
  onEvent(): void {}
  // @ts-expect-error a message type with a function field cannot be carried by the bus
  popOutput(): TaskOutput<WithFunction> | undefined {
    return undefined;
  }
  isEmpty(): boolean {
    return true;
  }
  onShutdown(): void {}
}

/** Compile-time checks of the controller's typed sends (never called). */
function sends(controller: Controller, to: TaskAddress): void {
  const say: Say = { op: "say", text: "hi", bytes: new Uint8Array(2), tags: ["a"] };
  controller.sendToTask(to, say);
  controller.sendToTask<Room>(to, { op: "join", room: "lobby" });
  void controller.call(to, say);
  void controller.spawnTask("probe", say);
  // @ts-expect-error a function cannot be carried
  controller.sendToTask(to, { op: "f", run: () => {} });
  // @ts-expect-error a bigint cannot be carried
  controller.sendToTask(to, { n: 1n });
  // @ts-expect-error a Date (a class instance) cannot be carried
  void controller.call(to, { at: new Date() });
  // @ts-expect-error a Map cannot be carried
  void controller.spawnTask("probe", new Map<string, number>());
}

describe("typed messages", () => {
  test("typed tasks are tasks; what the types cannot see is refused at run time with the path", async () => {
    expect(new Typed().isEmpty()).toBe(false);
    expect(new Untyped().isEmpty()).toBe(true);
    expect(typeof sends).toBe("function");
    const { controller } = await lab(1, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    const hidden: unknown = { op: "f", deep: [{ run: () => {} }] };
    expect(() => controller.sendToTask(a, hidden as Room)).toThrow(TypeError);
    expect(() => controller.sendToTask(a, hidden as Room)).toThrow(/deep\.0\.run|deep\[0\]\.run/);
    expect(await controller.call(a, "still fine")).toBe("re: still fine");
  });
});
