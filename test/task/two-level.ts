import {
  type GroupOutput,
  TaskGroup,
  TaskSwitcher,
  TaskSwitcherBranch,
} from "../../src/task/index.ts";
import type { ScriptedTask } from "./scripted-task.ts";

type Group = TaskGroup<number, string, ScriptedTask>;

/** A worker-shaped composition used by the tests: N groups behind one switcher. */
export class TwoLevel {
  readonly switcher: TaskSwitcher;
  readonly branches: TaskSwitcherBranch<Group>[] = [];

  constructor(groups: number) {
    this.switcher = new TaskSwitcher(groups);
    for (let g = 0; g < groups; g++) this.branches.push(new TaskSwitcherBranch(new TaskGroup(), g));
  }

  group(g: number): Group {
    const branch = this.branches[g];
    if (branch === undefined) throw new Error(`no group ${g}`);
    return branch.child;
  }

  tick(now: number): void {
    for (const b of this.branches) b.input(this.switcher).onTick(now);
  }

  event(now: number, g: number, index: number, payload: number): boolean {
    const branch = this.branches[g];
    if (branch === undefined) return false;
    return branch.input(this.switcher).onEvent(now, index, payload);
  }

  shutdown(now: number, g: number): void {
    this.branches[g]?.input(this.switcher).onShutdown(now);
  }

  /** One worker-level output rendered as text, or undefined when everything is drained. */
  pop(now: number): string | undefined {
    for (;;) {
      const g = this.switcher.current();
      if (g === undefined) return undefined;
      const out = this.branches[g]?.popOutput(now, this.switcher);
      if (out !== undefined) return render(g, out);
    }
  }

  drain(now: number): string[] {
    const outs: string[] = [];
    for (let o = this.pop(now); o !== undefined; o = this.pop(now)) outs.push(o);
    return outs;
  }
}

/** Renders a group output as `g<group> <kind> [<index> <value or error message>]`. */
export function render(g: number, out: GroupOutput<string>): string {
  switch (out.kind) {
    case "output":
    case "finished":
      return `g${g} ${out.kind} ${out.index} ${out.value}`;
    case "error":
      return `g${g} error ${out.index} ${out.error.message}`;
    case "empty":
      return `g${g} empty`;
  }
}
