/**
 * Simulation: a network of hosts and links on a virtual clock (`SimNetwork`) and backends on it
 * (`SimBackend`). Deterministic from a seed.
 */
export { SimBackend } from "./backend.ts";
export type { DropReason, HostOptions, SimHost } from "./host.ts";
export { type LinkOptions, SimNetwork, type SimNetworkStats } from "./network.ts";
export { hash32, SimRandom } from "./random.ts";
export type { SimTun, SimTunOptions } from "./tun.ts";
