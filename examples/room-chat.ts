/**
 * UDP room chat on the grouped-task runtime: sessions as tasks, rooms as bus channels across the
 * workers (the tasks and their design: examples/room-chat-worker.ts).
 *
 *   bun examples/room-chat.ts --port PORT [--workers N] [--host ADDR] [--idle SECONDS]
 *       [--max-bytes N] [--backend auto|uring|epoll] [--allow-crash]
 *
 * Every worker runs a gateway on the same port (SO_REUSEPORT); prints "listening ADDR:PORT
 * (N workers, KIND backend)" once all are open. Clients send one line per datagram: `/nick NAME`,
 * `/join ROOM`, `/leave`, or text to say to their room; they get back lines like
 * `* alice joined #lobby`, `<alice> hi`, and errors as `! ...`. A client silent for --idle
 * seconds (default 60) is told `! idle` and its session ends. Datagrams longer than --max-bytes
 * (default 1024) or not UTF-8 are answered with an error and counted. --allow-crash (for tests)
 * lets a client make its session throw with `/crash`.
 *
 * Commands on stdin, each answered with one line:
 *   members ROOM        → "members #ROOM: NICK NICK..." (sorted; "(none)" when empty)
 *   sessions            → "sessions: NICK@wWORKER[#ROOM] ..." (sorted; "(none)" when empty)
 *   kick NICK REASON    → "kicked NICK: N session(s)" (every session using NICK; nicks are
 *                         not unique) or "kick: no session uses the nick NICK"
 *   counters            → "counters: N rejected, M lost" (hostile datagrams; sessions found dead)
 * SIGINT or SIGTERM shuts it down gracefully (clients are told `! server shutting down`) and
 * prints "stopped: ..." last; the exit code is 0 when every worker stopped by itself.
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Controller, type ControllerEvent, recvBufferSizeFor, TaskAddress } from "bun-sansio";
import { type Cli, cli, failureLine, stopOnSignals } from "./cli.ts";
import chatWorker, {
  type ChatConfig,
  type ControlMessage,
  type GatewayReport,
  type GatewayStatus,
  type SessionInfo,
} from "./room-chat-worker.ts";

const arg: Cli = cli("room-chat");
const { values } = parseArgs({
  options: {
    port: { type: "string" },
    workers: { type: "string", default: "2" },
    host: { type: "string", default: "127.0.0.1" },
    idle: { type: "string", default: "60" },
    "max-bytes": { type: "string", default: "1024" },
    backend: { type: "string", default: "auto" },
    "allow-crash": { type: "boolean", default: false },
  },
});
if (values.port === undefined) arg.fail("--port is required (0 picks a free port)");
const workers = arg.number("workers", values.workers, 1, 64);
const maxBytes = arg.number("max-bytes", values["max-bytes"], 1, 65507);
const config: ChatConfig = {
  host: values.host,
  port: arg.number("port", values.port, 0, 65535),
  idleMs: Math.round(arg.number("idle", values.idle, 0.01, 86_400, false) * 1000),
  maxBytes,
  allowCrash: values["allow-crash"],
};
const backend = arg.backend(values.backend);

const controller = new Controller({ maxWorkers: workers });
/** Each worker's gateway, once it has reported its socket open. */
const gateways: TaskAddress[] = [];
const waiting = new Map<number, (report: GatewayReport) => void>();
const totals = { rejected: 0, lost: 0 };

controller.on((e: ControllerEvent) => {
  const report = e.kind === "message" ? gatewayReport(e.data) : undefined;
  if (e.kind === "message" && report !== undefined && e.from !== undefined) {
    if (report.op === "listening") gateways.push(e.from);
    if (report.op === "closed") {
      totals.rejected += report.rejected;
      totals.lost += report.lost;
    }
    waiting.get(e.worker)?.(report);
    return;
  }
  const failure =
    e.kind === "task-error"
      ? `worker ${e.worker}: task ${e.task} failed: ${e.error.name}: ${e.error.message}`
      : failureLine(e);
  if (failure !== undefined) console.error(failure);
  if (e.kind === "worker-died") {
    waiting.get(e.worker)?.({ op: "listen-failed", code: "EDEAD", message: e.error.message });
  }
});

/** Starts worker `index` (its gateway binds `port`); resolves with the gateway's first report. */
async function start(index: number, port: number): Promise<GatewayReport> {
  const reported = new Promise<GatewayReport>((resolve) => waiting.set(index, resolve));
  await controller.addWorker<ChatConfig>({
    module: chatWorker,
    config: { ...config, port },
    backend,
    recvBufferSize: recvBufferSizeFor(maxBytes), // longer ones come cut short, with their size
  });
  return reported;
}

/** Every live session, from every gateway (each checks its sessions are alive), and counters. */
async function status(): Promise<{ sessions: SessionInfo[]; rejected: number; lost: number }> {
  const answers = await Promise.all(
    gateways.map((g) => controller.call<ControlMessage>(g, { op: "who" }, { timeoutMs: 5000 })),
  );
  const all = { sessions: [] as SessionInfo[], rejected: 0, lost: 0 };
  for (const answer of answers) {
    const s = gatewayStatus(answer);
    if (s === undefined) throw new Error(`a gateway answered ${JSON.stringify(answer)}`);
    all.sessions.push(...s.sessions);
    all.rejected += s.rejected;
    all.lost += s.lost;
  }
  return all;
}

/** Runs one stdin command and returns its one-line answer. */
async function command(line: string): Promise<string> {
  const [name = "", first = "", ...rest] = line.trim().split(/\s+/);
  if (name === "members" && first !== "") {
    const room = first.replace(/^#/, "");
    const nicks = (await status()).sessions.filter((s) => s.room === room).map((s) => s.nick);
    return `members #${room}: ${nicks.length === 0 ? "(none)" : nicks.sort().join(" ")}`;
  }
  if (name === "sessions") {
    const each = (await status()).sessions.map(
      (s) => `${s.nick}@w${TaskAddress.of(s.session).worker}${s.room === null ? "" : `#${s.room}`}`,
    );
    return `sessions: ${each.length === 0 ? "(none)" : each.sort().join(" ")}`;
  }
  if (name === "kick" && first !== "" && rest.length > 0) {
    const reason = rest.join(" ");
    const found = (await status()).sessions.filter((s) => s.nick === first);
    if (found.length === 0) return `kick: no session uses the nick ${first}`;
    for (const s of found) {
      controller.sendToTask<ControlMessage>(TaskAddress.of(s.session), { op: "kick", reason });
    }
    return `kicked ${first}: ${found.length} session(s)`;
  }
  if (name === "counters") {
    const { rejected, lost } = await status();
    return `counters: ${rejected} rejected, ${lost} lost`;
  }
  return `unknown command "${line}": try members ROOM, sessions, kick NICK REASON, counters`;
}

async function stop(code: number): Promise<never> {
  const report = await controller.shutdown({ timeoutMs: 3000 });
  console.log(
    `stopped: workers stopped [${report.stopped}], terminated [${report.terminated}], dead [${report.dead}]; ${totals.rejected} datagrams rejected, ${totals.lost} sessions lost`,
  );
  process.exit(report.terminated.length > 0 || report.dead.length > 0 ? 1 : code);
}

const stopOnce = stopOnSignals(stop);
try {
  const first = await start(0, config.port);
  if (first.op !== "listening") {
    throw new Error(`cannot listen on ${config.host}:${config.port}: ${describe(first)}`);
  }
  for (let i = 1; i < workers; i++) {
    const r = await start(i, first.port);
    if (r.op !== "listening") throw new Error(`worker ${i} cannot share the port: ${describe(r)}`);
  }
  const kind = controller.stats()[0]?.backend;
  console.log(`listening ${first.address} (${workers} workers, ${kind} backend)`);
} catch (e) {
  console.error(`room-chat: ${e instanceof Error ? e.message : String(e)}`);
  await stopOnce(1);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "") return;
  command(line).then(
    (answer) => console.log(answer),
    (e: unknown) => console.log(`error: ${e instanceof Error ? e.message : String(e)}`),
  );
});

function describe(r: GatewayReport): string {
  return r.op === "listen-failed" ? `${r.code}: ${r.message}` : r.op;
}

/** `data` as a gateway's report, or undefined when it is not one. */
function gatewayReport(data: unknown): GatewayReport | undefined {
  if (!isRecord(data)) return undefined;
  const { op } = data;
  if (op === "listening" && typeof data.address === "string" && typeof data.port === "number") {
    return { op, address: data.address, port: data.port };
  }
  if (op === "listen-failed" && typeof data.code === "string" && typeof data.message === "string") {
    return { op, code: data.code, message: data.message };
  }
  if (op === "closed" && typeof data.rejected === "number" && typeof data.lost === "number") {
    return { op, rejected: data.rejected, lost: data.lost };
  }
  return undefined;
}

/** `data` as a gateway's answer to "who", or undefined when it is not one. */
function gatewayStatus(data: unknown): GatewayStatus | undefined {
  if (!isRecord(data) || data.op !== "status" || !Array.isArray(data.sessions)) return undefined;
  if (typeof data.rejected !== "number" || typeof data.lost !== "number") return undefined;
  const sessions: SessionInfo[] = [];
  for (const s of data.sessions as unknown[]) {
    if (!isRecord(s) || typeof s.nick !== "string" || typeof s.session !== "number") return;
    if (s.room !== null && typeof s.room !== "string") return undefined;
    sessions.push({ nick: s.nick, room: s.room, session: s.session });
  }
  return { op: "status", sessions, rejected: data.rejected, lost: data.lost };
}

function isRecord(x: unknown): x is Readonly<Record<string, unknown>> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}
