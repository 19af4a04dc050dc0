/**
 * The UDP room chat's tasks (run by examples/room-chat.ts): in every worker a gateway owning a
 * UDP socket (SO_REUSEPORT: all gateways share one port), and one session task per client.
 *
 * - Datagram → session: the gateway maps each client ("ip:port") to its session's address. A
 *   new client's datagram spawns a session on the least-loaded worker; the runtime tells the
 *   gateway its address ("spawned"), and the gateway holds the client's lines until then
 *   (PENDING at most). Each line goes to the session as a call; the session sends lines for its
 *   client back to the gateway ("out"), which sends them as datagrams, and "bye" when it ends.
 * - Rooms are bus channels, `roomChannel(room)` (a hash); a room line carries the room's name,
 *   so a session ignores another room whose name hashes alike.
 * - Liveness: a call to a session that has ended or thrown fails (at once, or after CALL_MS when
 *   its worker is stuck); the gateway then forgets the client, counts it lost and tells it so.
 * - Membership: any call to a gateway (the controller's "who") is answered, once the gateway has
 *   called each of its sessions, with the live ones (nick, room, address) and its counters.
 */
import type { AppTask, NetAction, NetEvent, TaskContext, TaskInput, TaskOutput } from "bun-sansio";
import { defineTasks, MAX_CHANNEL, Outbox, SocketAddr, TaskAddress } from "bun-sansio";

/** Each worker's gateway config (`port` 0: a free one, for the first; the others share it). */
export interface ChatConfig {
  readonly host: string;
  readonly port: number;
  /** A session whose client is silent this long is told `! idle` and ends. */
  readonly idleMs: number;
  /** Longer datagrams are answered `! datagram too long` and counted as rejected. */
  readonly maxBytes: number;
  /** For tests: `/crash` makes a session throw. */
  readonly allowCrash: boolean;
}

/** A live session as its gateway reports it (`session`: its address id). */
export interface SessionInfo {
  readonly nick: string;
  readonly room: string | null;
  readonly session: number;
}

/** A gateway's answer to a call: its live sessions, datagrams rejected, sessions found dead. */
export interface GatewayStatus {
  readonly op: "status";
  readonly sessions: readonly SessionInfo[];
  readonly rejected: number;
  readonly lost: number;
}

/** What a gateway tells the controller unasked: its socket opened, could not, or closed. */
export type GatewayReport =
  | { readonly op: "listening"; readonly address: string; readonly port: number }
  | { readonly op: "listen-failed"; readonly code: string; readonly message: string }
  | { readonly op: "closed"; readonly rejected: number; readonly lost: number };

/** From the controller: "who" (a call to a gateway), "kick" (a message to a session). */
export type ControlMessage =
  | { readonly op: "who" }
  | { readonly op: "kick"; readonly reason: string };

/** Session → its gateway. */
type Upward =
  | { readonly op: "bye"; readonly client: string }
  | { readonly op: "out"; readonly client: string; readonly text: string };
/** Gateway → session, a call answered with `State`: one line from the client. */
type Line = { readonly op: "line"; readonly text: string };
type State = { readonly op: "state"; readonly nick: string; readonly room: string | null };
/** Published on a room's channel. */
type RoomLine = { readonly op: "room"; readonly room: string; readonly line: string };

/** Every message a session sends or receives. */
export type SessionMessage = Upward | Line | State | RoomLine | ControlMessage;
/** Every message a gateway sends or receives. */
export type GatewayMessage = Upward | Line | State | ControlMessage | GatewayStatus | GatewayReport;

type SessionConfig = Pick<ChatConfig, "idleMs" | "allowCrash"> & {
  gateway: number;
  client: string;
};

const SOCKET = 0;
const CALL_MS = 2000;
const PENDING = 8;
const NAME = /^[A-Za-z0-9_-]{1,24}$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const ENCODER = new TextEncoder();

/** The bus channel of `room`: FNV-1a of its name, in 1..MAX_CHANNEL (deterministic). */
export function roomChannel(room: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < room.length; i++) h = Math.imul(h ^ room.charCodeAt(i), 0x01000193) >>> 0;
  return 1 + (h % MAX_CHANNEL);
}

type Client = { addr: SocketAddr; session?: TaskAddress; queue: string[] };
type Query = { call: number; left: number; found: SessionInfo[] };

/** Owns its worker's UDP socket and routes each client's lines to its session (see above). */
export class Gateway implements AppTask<GatewayMessage> {
  readonly #out = new Outbox<TaskOutput<GatewayMessage>>();
  readonly #clients = new Map<string, Client>();
  readonly #calls = new Map<number, { client: string; session: TaskAddress; query?: Query }>();
  /** Spawns under way: tag → client. */
  readonly #spawns = new Map<number, string>();
  #tag = 0;
  #rejected = 0;
  #lost = 0;
  #state: "opening" | "open" | "closing" | "closed" = "opening";
  #stopping = false;

  constructor(
    readonly config: ChatConfig,
    readonly context: TaskContext,
  ) {
    const bind = SocketAddr.parse(config.host, config.port);
    this.#net({ kind: "udp-listen", socket: SOCKET, bind, reusePort: true });
  }

  onEvent(_now: number, input: TaskInput<GatewayMessage>): void {
    if (input.kind === "net") this.#onNet(input.event);
    else if (input.kind === "spawned")
      this.#spawned(input.tag, input.ok ? input.address : input.error);
    else if (input.kind === "message" && input.from !== null) this.#upward(input.from, input.data);
    else if (input.kind === "call") {
      const query: Query = { call: input.call, left: 1, found: [] };
      for (const [key, c] of this.#clients) {
        if (c.session === undefined) continue;
        query.left++;
        this.#call(key, c.session, { op: "who" }, query);
      }
      this.#settle(query); // the `left: 1` above
    } else if (input.kind === "reply") {
      const call = this.#calls.get(input.tag);
      if (call === undefined) return;
      this.#calls.delete(input.tag);
      if (!input.ok) this.#lose(call.client, call.session);
      else if (input.data.op === "state" && call.query !== undefined) {
        call.query.found.push({ ...input.data, session: call.session.id });
      }
      if (call.query !== undefined) this.#settle(call.query);
    }
  }

  #onNet(e: NetEvent): void {
    if (e.kind === "udp-packet") {
      if (this.#state !== "open") return; // closing
      if (e.truncated || e.size > this.config.maxBytes) {
        this.#reject(e.from, `datagram too long (${e.size} bytes, max ${this.config.maxBytes})`);
      } else this.#datagram(e.from, e.data);
    } else if (e.kind === "udp-listen-result" && e.local !== undefined) {
      this.#state = "open";
      this.#report({ op: "listening", address: e.local.toString(), port: e.local.port });
      if (this.#stopping) this.#close();
    } else if (e.kind === "udp-listen-result") {
      const { code, message } = e.error ?? { code: "EINVAL", message: "no local address" };
      this.#report({ op: "listen-failed", code, message });
      this.#state = "closed";
    } else if (e.kind === "udp-closed") {
      this.#report({ op: "closed", rejected: this.#rejected, lost: this.#lost });
      this.#state = "closed";
    }
  }

  #datagram(from: SocketAddr, data: Uint8Array): void {
    let text: string;
    try {
      text = UTF8.decode(data).replace(/\r?\n$/, "");
    } catch {
      this.#reject(from, "not valid UTF-8");
      return;
    }
    const key = from.toString();
    let c = this.#clients.get(key);
    if (c === undefined) {
      c = { addr: from, queue: [] };
      this.#clients.set(key, c);
      const { idleMs, allowCrash } = this.config;
      const config: SessionConfig = {
        gateway: this.context.address.id,
        client: key,
        idleMs,
        allowCrash,
      };
      const tag = ++this.#tag;
      this.#spawns.set(tag, key);
      this.#out.push({ kind: "spawn", task: "session", config, tag });
    }
    if (c.session !== undefined) this.#call(key, c.session, { op: "line", text });
    else if (c.queue.length < PENDING) c.queue.push(text);
    else this.#reject(from, "busy: your session is starting");
  }

  /** The session spawned for a client runs at `session` (or could not start: why). */
  #spawned(tag: number, session: TaskAddress | string): void {
    const key = this.#spawns.get(tag);
    this.#spawns.delete(tag);
    const c = key === undefined ? undefined : this.#clients.get(key);
    if (key === undefined || c === undefined) return;
    if (typeof session === "string") {
      this.#clients.delete(key);
      this.#reject(c.addr, `no session: ${session}`);
      return;
    }
    c.session = session;
    for (const text of c.queue.splice(0)) this.#call(key, session, { op: "line", text });
  }

  #upward(from: TaskAddress, m: GatewayMessage): void {
    if (m.op !== "out" && m.op !== "bye") return;
    const c = this.#clients.get(m.client);
    if (c?.session?.equals(from) === true) {
      if (m.op === "out") this.#send(c.addr, m.text);
      else this.#clients.delete(m.client); // bye
    }
  }

  #call(client: string, session: TaskAddress, data: Line | ControlMessage, query?: Query): void {
    const tag = ++this.#tag;
    this.#calls.set(tag, query === undefined ? { client, session } : { client, session, query });
    this.#out.push({ kind: "call", to: session, data, tag, timeoutMs: CALL_MS });
  }

  /** One more answer to `q`: the last one answers the call. */
  #settle(q: Query): void {
    if (--q.left > 0) return;
    const [rejected, lost] = [this.#rejected, this.#lost];
    const data: GatewayStatus = { op: "status", sessions: q.found, rejected, lost };
    this.#out.push({ kind: "reply", call: q.call, data });
  }

  /** A call to the session of `client` failed: it is gone; so is the client, until it sends. */
  #lose(client: string, session: TaskAddress): void {
    const c = this.#clients.get(client);
    if (c === undefined || c.session?.equals(session) !== true) return;
    this.#lost++;
    this.#send(c.addr, "! session lost; send again to start a new one");
    this.#clients.delete(client);
  }

  #reject(to: SocketAddr, why: string): void {
    this.#rejected++;
    this.#send(to, `! ${why}`);
  }

  #send(to: SocketAddr, text: string): void {
    const data = ENCODER.encode(`${text}\n`);
    if (this.#state === "open") this.#net({ kind: "udp-send", socket: SOCKET, to, data });
  }

  #close(): void {
    if (this.#state !== "open") return;
    for (const c of this.#clients.values()) this.#send(c.addr, "! server shutting down");
    this.#net({ kind: "udp-unlisten", socket: SOCKET });
    this.#state = "closing";
  }

  #net(action: NetAction): void {
    this.#out.push({ kind: "net", action });
  }

  #report(data: GatewayReport): void {
    this.#out.push({ kind: "controller", data });
  }

  /** Tells its clients, closes its socket and ends (what its sessions still send is dropped). */
  onShutdown(): void {
    this.#stopping = true;
    this.#close();
  }

  popOutput(): TaskOutput<GatewayMessage> | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#state === "closed" && this.#out.length === 0;
  }
}

/** One client's chat session: its nick, its room, its idle deadline (see the module comment). */
export class Session implements AppTask<SessionMessage> {
  readonly #out = new Outbox<TaskOutput<SessionMessage>>();
  readonly #gateway: TaskAddress;
  #nick: string;
  #room: string | null = null;
  #heard: number;
  #done = false;

  constructor(
    readonly config: SessionConfig,
    context: TaskContext,
  ) {
    this.#gateway = TaskAddress.of(config.gateway);
    this.#nick = `guest-${context.worker}-${context.address.slot}`;
    this.#heard = context.now;
    this.#out.push({ kind: "timer", at: context.now + config.idleMs });
  }

  onEvent(now: number, input: TaskInput<SessionMessage>): void {
    if (this.#done) return;
    if (input.kind === "call") {
      if (input.data.op === "line") this.#line(now, input.data.text);
      const data: State = { op: "state", nick: this.#nick, room: this.#room };
      this.#out.push({ kind: "reply", call: input.call, data });
    } else if (input.kind === "channel") {
      if (input.data.op === "room" && input.data.room === this.#room) this.#tell(input.data.line);
    } else if (input.kind === "message" && input.data.op === "kick") {
      this.#end(`! kicked: ${input.data.reason}`, "was kicked from", input.data.reason);
    } else if (input.kind === "timer") {
      const at = this.#heard + this.config.idleMs;
      if (now >= at) this.#end("! idle", "left", "idle");
      else this.#out.push({ kind: "timer", at });
    }
  }

  #line(now: number, text: string): void {
    this.#heard = now;
    const [command = "", ...rest] = text.split(" ");
    const arg = rest
      .join(" ")
      .trim()
      .replace(command === "/join" ? /^#/ : "", "");
    const named = NAME.test(arg);
    if (!text.startsWith("/") && this.#room !== null) this.#publish(`<${this.#nick}> ${text}`);
    else if (!text.startsWith("/")) this.#tell("! join a room first: /join ROOM");
    else if ((command === "/nick" || command === "/join") && !named) {
      this.#tell(`! ${command.slice(1)} names are 1 to 24 letters, digits, _ or -`);
    } else if (command === "/nick") {
      if (this.#room === null) this.#tell(`* you are now ${arg}`);
      else this.#publish(`* ${this.#nick} is now ${arg}`);
      this.#nick = arg;
    } else if (command === "/join" && arg === this.#room) this.#tell(`! already in #${arg}`);
    else if (command === "/join") {
      this.#leave("left");
      this.#room = arg;
      this.#out.push({ kind: "subscribe", channel: roomChannel(arg) });
      this.#publish(`* ${this.#nick} joined #${arg}`);
    } else if (command === "/leave" && this.#room === null) this.#tell("! not in a room");
    else if (command === "/leave") this.#leave("left");
    else if (command === "/crash" && this.config.allowCrash) {
      throw new Error(`${this.#nick} asked for a crash`);
    } else this.#tell(`! unknown command ${command}: try /nick NAME, /join ROOM, /leave`);
  }

  /** Leaves its room, if in one, saying so to the room and to its client. */
  #leave(verb: string, why?: string): void {
    const room = this.#room;
    if (room === null) return;
    const line = `* ${this.#nick} ${verb} #${room}${why === undefined ? "" : ` (${why})`}`;
    this.#publish(line);
    this.#out.push({ kind: "unsubscribe", channel: roomChannel(room) });
    this.#room = null;
    this.#tell(line); // its own publish no longer reaches it
  }

  #end(notice: string, verb: string, why: string): void {
    this.#tell(notice);
    this.#leave(verb, why);
    this.#up({ op: "bye", client: this.config.client });
    this.#done = true;
  }

  #publish(line: string): void {
    const room = this.#room ?? "";
    const data: RoomLine = { op: "room", room, line };
    this.#out.push({ kind: "publish", channel: roomChannel(room), data });
  }

  #tell(text: string): void {
    this.#up({ op: "out", client: this.config.client, text });
  }

  #up(data: Upward): void {
    this.#out.push({ kind: "send", to: this.#gateway, data });
  }

  /** Ends (its gateway tells its client; the runtime takes it off its channel). */
  onShutdown(): void {
    this.#done = true;
  }

  popOutput(): TaskOutput<SessionMessage> | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#done && this.#out.length === 0;
  }
}

/** The worker module: kinds "gateway" and "session"; each worker starts one gateway. */
export default defineTasks<ChatConfig>(
  {
    gateway: (config: ChatConfig, context: TaskContext) => new Gateway(config, context),
    session: (config: SessionConfig, context: TaskContext) => new Session(config, context),
  },
  { start: (_index, config) => [{ task: "gateway", config }] },
);
