import type { Controller, ControllerEvent } from "../../src/index.ts";

/** Records a controller's events and waits for the ones a test expects. */
export class EventLog {
  readonly events: ControllerEvent[] = [];

  constructor(controller: Controller) {
    controller.on((e) => this.events.push(e));
  }

  /** Data of "message" events, optionally only those matching `pick`. */
  messages<T = Record<string, unknown>>(pick: (data: T) => boolean = () => true): T[] {
    return this.events
      .filter((e) => e.kind === "message")
      .map((e) => (e as { data: unknown }).data as T)
      .filter(pick);
  }

  /** Waits (polling the event loop) until `test()` holds; fails after `ms`. */
  async until(what: string, test: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events)}`);
      }
      await Bun.sleep(5);
    }
  }

  /** Waits for a message whose data matches `pick` and returns it. */
  async message<T = Record<string, unknown>>(what: string, pick: (data: T) => boolean): Promise<T> {
    await this.until(what, () => this.messages(pick).length > 0);
    return this.messages(pick)[0] as T;
  }
}
