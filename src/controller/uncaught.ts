import type { ErrorInfo } from "../runtime/protocol.ts";

/** A line of the source excerpt Bun prints around an uncaught error: `12 | code` or a caret. */
const EXCERPT = /^(\d+\s*\||\^)/;
/** The line that names the error: `TypeError: message`, or `error: message` for a plain Error. */
const HEADLINE = /^([A-Za-z_$][\w$]*): (.*)$/;

/**
 * The error of a Worker's "error" event. Bun gives only a text (`ErrorEvent.error` is null) made
 * of a source excerpt, a caret, the `Name: message` line and the stack: keep the name and the
 * message, drop the rest.
 */
export function uncaughtError(text: string): ErrorInfo {
  const lines = String(text)
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !EXCERPT.test(line));
  for (const line of lines) {
    const m = HEADLINE.exec(line);
    if (m === null || line.startsWith("at ")) continue;
    const name = m[1] === "error" ? "Error" : (m[1] as string);
    return { name, message: m[2] as string };
  }
  return {
    name: "Error",
    message: lines.find((line) => !line.startsWith("at ")) ?? "uncaught error",
  };
}
