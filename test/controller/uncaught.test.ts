import { describe, expect, test } from "bun:test";
import { uncaughtError } from "../../src/controller/uncaught.ts";

describe("uncaught worker errors", () => {
  test("Bun's text (source excerpt, caret, headline, stack) becomes the error's name and message", () => {
    const text = [
      "3 | export default defineWorker(() => {",
      "4 |   throw new Error('unreachable');",
      "5 | });",
      "6 | ",
      "7 | if (!Bun.isMainThread) throw new TypeError('module failed: a: b');",
      "                               ^",
      "TypeError: module failed: a: b",
      "      at /srv/app/worker.ts:7:30",
    ].join("\n");
    expect(uncaughtError(text)).toEqual({ name: "TypeError", message: "module failed: a: b" });
  });

  test("a plain Error is printed as `error:`; a thrown string is kept as it is", () => {
    expect(uncaughtError("1 | x\n    ^\nerror: boom\n  at a.ts:1:1")).toEqual({
      name: "Error",
      message: "boom",
    });
    expect(uncaughtError("plain string")).toEqual({ name: "Error", message: "plain string" });
    expect(uncaughtError("")).toEqual({ name: "Error", message: "uncaught error" });
  });
});
