/**
 * Run by test/backend/limits.test.ts in a child process under a lowered limit: creates backends
 * and a socket the way a worker would, and prints one JSON line per step with what happened.
 *
 *   bun limits.ts fds      (under a low RLIMIT_NOFILE: uses every fd but one first)
 *   bun limits.ts memlock  (as an unprivileged user with a low RLIMIT_MEMLOCK)
 */
import { closeSync, openSync } from "node:fs";
import { createBackend, type NetEvent, SocketAddr } from "../../../src/index.ts";

const logged: string[] = [];
const log = (line: string) => logged.push(line);

function attempt(step: string, kind: "auto" | "uring" | "epoll"): void {
  try {
    const backend = createBackend(kind, { onEvent() {} }, log);
    console.log(JSON.stringify({ step, ok: backend.kind, logged: logged.splice(0) }));
    backend.close();
  } catch (e) {
    const error = e as Error;
    console.log(
      JSON.stringify({ step, error: error.name, message: error.message, logged: logged.splice(0) }),
    );
  }
}

if (process.argv[2] === "fds") {
  const held: number[] = [];
  for (;;) {
    try {
      held.push(openSync("/dev/null", "r"));
    } catch {
      break;
    }
  }
  closeSync(held.pop() as number); // one fd left: a backend needs at least two
  attempt("auto", "auto");
  attempt("epoll", "epoll");
  closeSync(held.pop() as number); // two left: an epoll backend, but no socket
  const events: NetEvent[] = [];
  const backend = createBackend("epoll", { onEvent: (_owner, e) => events.push(e) });
  backend.act(0, { kind: "udp-listen", socket: 0, bind: SocketAddr.parse("127.0.0.1", 0) });
  backend.poll(0);
  const result = events.find((e) => e.kind === "udp-listen-result");
  console.log(JSON.stringify({ step: "listen", event: result }));
} else {
  attempt("auto", "auto");
  attempt("auto again", "auto");
  attempt("uring", "uring");
}
