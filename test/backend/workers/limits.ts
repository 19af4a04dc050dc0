/**
 * Run by test/backend/limits.test.ts in a child process under a lowered limit: creates backends
 * and a socket the way a worker would, and prints one JSON line per step with what happened.
 *
 *   bun limits.ts fds      (under a low RLIMIT_NOFILE: uses every fd but one first)
 *   bun limits.ts memlock  (as an unprivileged user with a low RLIMIT_MEMLOCK)
 *   bun limits.ts tcp-fds uring|epoll  (accepts when the process is out of fds)
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

/** Opens /dev/null until the process is out of descriptors; returns them. */
function useEveryFd(): number[] {
  const held: number[] = [];
  for (;;) {
    try {
      held.push(openSync("/dev/null", "r"));
    } catch {
      return held;
    }
  }
}

if (process.argv[2] === "fds") {
  const held = useEveryFd();
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
} else if (process.argv[2] === "tcp-fds") {
  // two clients connect with the last two descriptors, so the server's accepts find none
  const events: NetEvent[] = [];
  const kind = process.argv[3] === "uring" ? "uring" : "epoll";
  const backend = createBackend(kind, { onEvent: (_owner, e) => events.push(e) });
  const until = (done: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline) backend.poll(5);
    return done();
  };
  backend.act(0, { kind: "tcp-listen", listener: 0, bind: SocketAddr.parse("127.0.0.1", 0) });
  until(() => events.length > 0, 2000);
  const listening = events[0];
  if (listening?.kind !== "tcp-listen-result" || listening.local === undefined)
    throw new Error(`listen: ${JSON.stringify(listening)}`);
  const held = useEveryFd();
  closeSync(held.pop() as number);
  closeSync(held.pop() as number);
  for (const conn of [0, 1]) backend.act(0, { kind: "tcp-connect", conn, to: listening.local });
  const connected = () => events.filter((e) => e.kind === "tcp-connect-result").length === 2;
  until(() => connected() && backend.stats().tcpAcceptParked > 0, 3000);
  // out of descriptors for half a second: accepting is retried now and then, not in a loop
  const start = Date.now();
  let polls = 0;
  while (Date.now() - start < 500) polls += backend.poll(50) >= 0 ? 1 : 0;
  const parked = { ...backend.stats() };
  // descriptors come back, not through a TCP close: accepting resumes by itself
  for (const fd of held.splice(0, 8)) closeSync(fd);
  until(() => backend.stats().tcpAccepted === 2, 3000);
  const accepted = events.flatMap((e) => (e.kind === "tcp-accept" ? [e.conn] : []));
  for (const conn of accepted) backend.act(0, { kind: "tcp-send", conn, data: Uint8Array.of(7) });
  const echoed = () => events.filter((e) => e.kind === "tcp-data").length === 2;
  until(echoed, 3000);
  console.log(
    JSON.stringify({
      step: "tcp-fds",
      connected: events.filter((e) => e.kind === "tcp-connect-result" && !e.error).length,
      acceptedWhileOut: parked.tcpAccepted,
      parkedWhileOut: parked.tcpAcceptParked,
      polls,
      accepted: backend.stats().tcpAccepted,
      delivered: echoed(),
    }),
  );
  backend.close();
} else {
  attempt("auto", "auto");
  attempt("auto again", "auto");
  attempt("uring", "uring");
}
