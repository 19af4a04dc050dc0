/** A task that tells the controller one word, its worker's name, and ends at shutdown. */
import { type AppTask, Outbox, type TaskOutput } from "../../../../src/index.ts";

/** Says `word` to the controller once. */
export class Hello implements AppTask<string> {
  readonly #out = new Outbox<TaskOutput<string>>();
  #done = false;

  constructor(word: string) {
    this.#out.push({ kind: "controller", data: word });
  }

  onEvent(): void {}

  onShutdown(): void {
    this.#done = true;
  }

  popOutput(): TaskOutput<string> | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#done && this.#out.length === 0;
  }
}
