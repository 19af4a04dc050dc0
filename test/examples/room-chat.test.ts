/**
 * The UDP room chat (examples/room-chat.ts) end to end: the server as a process, real UDP clients
 * on 127.0.0.1, commands on its stdin. Every wait is for a condition, with a deadline.
 */
import { afterEach, expect, test } from "bun:test";
import type { udp } from "bun";
import { KINDS } from "../backend/harness.ts";

const ROOT = `${import.meta.dir}/../..`;
/** What the server prints for the session that `/crash` made throw. */
const CRASH =
  /^worker [01]: task session w[01]\/g1\/s\d+#\d+ failed: Error: carol asked for a crash$/;
const WAIT_MS = 10_000;
const started: { kill: (signal?: number | NodeJS.Signals) => void }[] = [];
const sockets: { close: () => void }[] = [];

afterEach(() => {
  for (const p of started.splice(0)) p.kill("SIGKILL");
  for (const s of sockets.splice(0)) s.close();
});

/** Polls `test` until it holds; fails after `ms` with `what` and `context()`. */
async function until(what: string, test: () => boolean, context: () => string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${context()}`);
    await Bun.sleep(5);
  }
}

/** Lines read from a stream as they come. */
function lines(stream: ReadableStream<Uint8Array<ArrayBuffer>>): {
  lines: string[];
  done: Promise<void>;
} {
  const out: string[] = [];
  const done = (async () => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + chunk).split("\n");
      pending = parts.pop() ?? "";
      out.push(...parts);
    }
    if (pending !== "") out.push(pending);
  })();
  return { lines: out, done };
}

/** The chat server as a process: its output lines, stdin commands, and its port. */
async function server(args: string[]) {
  const proc = Bun.spawn(
    [process.execPath, "examples/room-chat.ts", "--port", "0", "--workers", "2", ...args],
    { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "pipe" },
  );
  started.push(proc);
  const out = lines(proc.stdout);
  const err = lines(proc.stderr);
  const context = () => `stdout: ${out.lines.join(" | ")}; stderr: ${err.lines.join(" | ")}`;
  /** The first line from index `from` on that matches `pattern`. */
  const waitFor = async (pattern: RegExp, from = 0, stream = out.lines): Promise<string> => {
    let found: string | undefined;
    await until(
      `a line matching ${pattern}`,
      () => {
        found = stream.slice(from).find((l) => pattern.test(l));
        return found !== undefined || proc.exitCode !== null;
      },
      context,
    );
    if (found === undefined) throw new Error(`exited before ${pattern}; ${context()}`);
    return found;
  };
  /** Runs a stdin command; resolves with its answer (the next line starting with `prefix`). */
  const command = async (line: string, prefix: string): Promise<string> => {
    const from = out.lines.length;
    proc.stdin.write(`${line}\n`);
    proc.stdin.flush();
    return waitFor(new RegExp(`^${prefix}`), from);
  };
  const listening = await waitFor(/^listening /);
  const m = /^listening 127\.0\.0\.1:(\d+) \(2 workers, (uring|epoll) backend\)$/.exec(listening);
  if (m === null) throw new Error(`unexpected ${listening}`);
  /** The server's answer to "members ROOM". */
  const members = (room: string): Promise<string> => command(`members ${room}`, "members");
  return { proc, out, err, waitFor, command, members, port: Number(m[1]), backend: m[2] };
}

/** A chat client on its own UDP socket: sends lines, reads the lines it is sent in order. */
class Client {
  readonly lines: string[] = [];
  #cursor = 0;
  #socket: udp.Socket<"buffer"> | undefined;

  constructor(
    readonly name: string,
    readonly port: number,
  ) {}

  async open(): Promise<this> {
    this.#socket = await Bun.udpSocket({
      hostname: "127.0.0.1",
      socket: {
        data: (_s, buf) => {
          this.lines.push(...buf.toString().split("\n").filter(Boolean));
        },
      },
    });
    sockets.push(this.#socket);
    return this;
  }

  send(data: string | Uint8Array): void {
    this.#socket?.send(data, this.port, "127.0.0.1");
  }

  /** Waits for a line equal to `line` after the last one expected; returns the lines skipped. */
  async expect(line: string): Promise<string[]> {
    const at = () => this.lines.indexOf(line, this.#cursor);
    await until(
      `${this.name} to get "${line}"`,
      () => at() >= 0,
      () => this.#seen(),
    );
    const skipped = this.lines.slice(this.#cursor, at());
    this.#cursor = at() + 1;
    return skipped;
  }

  /** Sends `data` and waits for `answer`. */
  async say(data: string | Uint8Array, answer: string): Promise<void> {
    this.send(data);
    await this.expect(answer);
  }

  #seen(): string {
    return `${this.name} got: ${JSON.stringify(this.lines)}`;
  }
}

test.each(KINDS)(
  "room chat over 2 workers (%s): rooms, kick, members, hostile input, a crash, shutdown",
  async (backend) => {
    const s = await server(["--max-bytes", "512", "--allow-crash", "--backend", backend]);
    expect(s.backend).toBe(backend);
    const [alice, bob, carol, dave, eve] = await Promise.all(
      ["alice", "bob", "carol", "dave", "eve"].map((n) => new Client(n, s.port).open()),
    );
    if (alice === undefined || bob === undefined || carol === undefined)
      throw new Error("no client");
    if (dave === undefined || eve === undefined) throw new Error("no client");

    // one session per client, spread over both workers
    for (const c of [alice, bob, carol, dave])
      await c.say(`/nick ${c.name}`, `* you are now ${c.name}`);
    const sessions = await s.command("sessions", "sessions:");
    expect(sessions).toMatch(/^sessions: alice@w[01] bob@w[01] carol@w[01] dave@w[01]$/);
    expect(sessions).toContain("@w0");
    expect(sessions).toContain("@w1");

    // three in #lobby, one in #den; each join reaches everyone already in the room (on either
    // worker: a worker woken by a datagram reads the bus first, so the earlier joins are seen)
    const { members } = s;
    await alice.say("/join lobby", "* alice joined #lobby");
    expect(await members("lobby")).toBe("members #lobby: alice");
    await bob.say("/join #lobby", "* bob joined #lobby");
    await alice.expect("* bob joined #lobby");
    expect(await members("lobby")).toBe("members #lobby: alice bob");
    await carol.say("/join lobby", "* carol joined #lobby");
    for (const c of [alice, bob]) await c.expect("* carol joined #lobby");
    expect(await members("lobby")).toBe("members #lobby: alice bob carol");
    await dave.say("/join den", "* dave joined #den");
    expect(await members("#den")).toBe("members #den: dave");

    // what one says reaches its room on both workers, and no other room
    bob.send("hi all");
    for (const c of [alice, bob, carol]) await c.expect("<bob> hi all");
    carol.send("hello from carol");
    for (const c of [alice, bob, carol]) await c.expect("<carol> hello from carol");
    await dave.say("anyone?", "<dave> anyone?");
    expect(dave.lines.filter((l) => l.includes("#lobby") || l.startsWith("<bob>"))).toEqual([]);
    for (const c of [alice, bob, carol])
      expect(c.lines.some((l) => l.includes("dave"))).toBe(false);
    await eve.say("hello?", "! join a room first: /join ROOM");
    await eve.say("/dance", "! unknown command /dance: try /nick NAME, /join ROOM, /leave");
    await eve.say("/nick not ok", "! nick names are 1 to 24 letters, digits, _ or -");

    expect(await members("attic")).toBe("members #attic: (none)");

    // leave
    await carol.say("/leave", "* carol left #lobby");
    for (const c of [alice, bob]) await c.expect("* carol left #lobby");
    await carol.say("still here?", "! join a room first: /join ROOM");
    expect(await members("lobby")).toBe("members #lobby: alice bob");

    // kick by the controller: the session tells its client, leaves its room and ends
    expect(await s.command("kick bob spamming the lobby", "kick")).toBe("kicked bob: 1 session(s)");
    await bob.expect("! kicked: spamming the lobby");
    await alice.expect("* bob was kicked from #lobby (spamming the lobby)");
    expect(await members("lobby")).toBe("members #lobby: alice");
    expect(await s.command("kick nobody because", "kick")).toBe(
      "kick: no session uses the nick nobody",
    );
    await bob.say("/nick bob", "* you are now bob"); // a new session

    // hostile datagrams: an answer and a count, nothing else disturbed
    await eve.say(new Uint8Array([0x66, 0xc3, 0x28, 0xff]), "! not valid UTF-8");
    await eve.say("x".repeat(600), "! datagram too long (600 bytes, max 512)");
    await eve.say("y".repeat(3000), "! datagram too long (3000 bytes, max 512)");
    expect(await s.command("counters", "counters")).toBe("counters: 3 rejected, 0 lost");
    await alice.say("still fine", "<alice> still fine");

    // a session that throws: a task error, its client told, the gateway forgets it
    await carol.say("/join vault", "* carol joined #vault");
    expect(await members("vault")).toBe("members #vault: carol");
    const errors = s.err.lines.length;
    await carol.say("/crash", "! session lost; send again to start a new one");
    await s.waitFor(CRASH, errors, s.err.lines);
    expect(await members("vault")).toBe("members #vault: (none)");
    expect(await s.command("counters", "counters")).toBe("counters: 3 rejected, 1 lost");
    await carol.say("back", "! join a room first: /join ROOM"); // a new session
    await alice.say("/nick al", "* alice is now al");
    expect(await members("lobby")).toBe("members #lobby: al");
    expect(await s.command("sessions", "sessions:")).toMatch(
      /^sessions: al@w[01]#lobby bob@w[01] dave@w[01]#den guest-\d-\d+@w[01] guest-\d-\d+@w[01]$/,
    );

    // graceful shutdown: every client told, every worker stopped, exit code 0, the port free
    s.proc.kill("SIGTERM");
    for (const c of [alice, bob, carol, dave, eve]) await c.expect("! server shutting down");
    expect(await s.proc.exited).toBe(0);
    await s.out.done;
    expect(s.out.lines.at(-1)).toBe(
      "stopped: workers stopped [0,1], terminated [], dead []; 3 datagrams rejected, 1 sessions lost",
    );
    const failures = s.err.lines.filter((l) => !l.includes("BackendFallback"));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(CRASH);
    const free = await Bun.udpSocket({ hostname: "127.0.0.1", port: s.port });
    free.close();
  },
  30_000,
);

test("a silent client's session ends after --idle; its next datagram starts a new one", async () => {
  const s = await server(["--idle", "1.5"]);
  const { members } = s;
  const ann = await new Client("ann", s.port).open();
  await ann.say("/nick ann", "* you are now ann");
  await ann.say("/join lobby", "* ann joined #lobby");
  expect(await members("lobby")).toBe("members #lobby: ann");
  await ann.expect("! idle");
  await ann.expect("* ann left #lobby (idle)");
  expect(await members("lobby")).toBe("members #lobby: (none)");
  expect(await s.command("sessions", "sessions:")).toBe("sessions: (none)");
  await ann.say("/nick ann", "* you are now ann");
  s.proc.kill("SIGINT");
  expect(await s.proc.exited).toBe(0);
  await s.out.done;
  expect(s.out.lines.at(-1)).toStartWith("stopped: workers stopped [0,1], terminated [], dead [];");
}, 30_000);

test("bad arguments give a readable error and exit code 2", async () => {
  const proc = Bun.spawn(
    [process.execPath, "examples/room-chat.ts", "--port", "0", "--idle", "0"],
    {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  started.push(proc);
  expect(await proc.exited).toBe(2);
  expect(await new Response(proc.stderr).text()).toContain("--idle must be 0.01..86400, got 0");
});
