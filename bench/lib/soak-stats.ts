/**
 * bench/soak.ts's arithmetic: what the load generator reports, the server samples taken with it,
 * and the memory drift between a first and a last window of the run.
 */

/** One progress line of bench/ref/udp_soak.c: cumulative counters since it started. */
export interface LoadCounters {
  /** Seconds since the load started. */
  t: number;
  sent: number;
  /** Intact echoes of datagrams in flight. */
  echoed: number;
  /** Datagrams not echoed within the loss timeout (1 s). */
  lost: number;
  /** Intact echoes of datagrams already counted lost. */
  late: number;
  /** Further intact echoes of datagrams already echoed. */
  duplicate: number;
  /** Echoes that were not an intact copy of a datagram sent from that socket. */
  corrupt: number;
  inflight: number;
  send_errors: number;
  recv_errors: number;
  /** Datagrams the kernel dropped at the generator's sockets (echoes lost on the way back). */
  rx_drops: number;
  /** 1 on the last line (after the datagrams still in flight came back or were counted lost). */
  final: number;
}

/** The server's state when the load generator reported `load`. */
export interface Sample {
  /** The sample's nominal time: the reporting interval it closes (`load.t` rounded to it). */
  t: number;
  rssKiB: number;
  fds: number;
  /** Datagrams the kernel dropped at the server's sockets so far (lost on the way there). */
  serverDrops: number;
  load: LoadCounters;
}

/** The windows compared for drift, in seconds of load: (from, to] each. */
export interface DriftWindows {
  warmup: number;
  first: readonly [number, number];
  last: readonly [number, number];
}

/**
 * The drift windows of a run of `seconds`: from 180 s up, a warm-up of 60 s, then the first
 * minute after it against the last minute; shorter runs (`--quick`), a warm-up of a fifth of
 * the run, then the first third of the rest against the last third.
 */
export function driftWindows(seconds: number): DriftWindows {
  const warmup = seconds >= 180 ? 60 : seconds / 5;
  const span = seconds >= 180 ? 60 : (seconds - warmup) / 3;
  return { warmup, first: [warmup, warmup + span], last: [seconds - span, seconds] };
}

/** Memory and fds in the two drift windows. */
export interface Drift {
  /** Mean RSS in the first window, MiB. */
  firstMiB: number;
  /** Mean RSS in the last window, MiB. */
  lastMiB: number;
  /** (last - first) / first, in percent. */
  pct: number;
  /** Most fds seen in the first window. */
  fdsFirst: number;
  /** Most fds seen in the last window. */
  fdsLast: number;
  /** Samples in each window. */
  counts: readonly [number, number];
}

/** The drift between `windows.first` and `windows.last` over `samples` (NaN for an empty window). */
export function drift(samples: readonly Sample[], windows: DriftWindows): Drift {
  const inside = ([from, to]: readonly [number, number]) =>
    samples.filter((s) => s.t > from + 1e-9 && s.t <= to + 1e-9);
  const first = inside(windows.first);
  const last = inside(windows.last);
  const meanMiB = (list: readonly Sample[]) =>
    list.reduce((n, s) => n + s.rssKiB, 0) / list.length / 1024;
  const maxFds = (list: readonly Sample[]) =>
    list.length === 0 ? Number.NaN : Math.max(...list.map((s) => s.fds));
  const firstMiB = meanMiB(first);
  const lastMiB = meanMiB(last);
  return {
    firstMiB,
    lastMiB,
    pct: ((lastMiB - firstMiB) / firstMiB) * 100,
    fdsFirst: maxFds(first),
    fdsLast: maxFds(last),
    counts: [first.length, last.length],
  };
}

/** Where the datagrams that never came back were lost (late ones did come back). */
export interface LossSplit {
  /** Lost and never echoed: lost - late. */
  gone: number;
  /** Dropped by the kernel at the server's sockets. */
  atServerSocket: number;
  /** Dropped by the kernel at the generator's sockets. */
  atGeneratorSocket: number;
  /** The rest: lost inside the server (received but never echoed) or on the way. */
  elsewhere: number;
}

/** Splits the datagrams that never came back by where the kernel says it dropped them. */
export function lossSplit(total: LoadCounters, serverDrops: number): LossSplit {
  const gone = total.lost - total.late;
  return {
    gone,
    atServerSocket: serverDrops,
    atGeneratorSocket: total.rx_drops,
    elsewhere: gone - serverDrops - total.rx_drops,
  };
}

/** Datagrams the counters do not account for: sent - echoed - lost - in flight (0 when sound). */
export function unaccounted(c: LoadCounters): number {
  return c.sent - c.echoed - c.lost - c.inflight;
}
