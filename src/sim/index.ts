/**
 * Simulation: a network of hosts and links on a virtual clock (`SimNetwork`), backends on it
 * (`SimBackend`), a harness that runs worker inners against each other (`SimHarness`), and fault
 * injection middleware for any backend (`withFaults`). Deterministic from a seed.
 */
export { SimBackend } from "./backend.ts";
export { SimBus } from "./bus.ts";
export type { SimErrno } from "./errors.ts";
export { FaultBackend, type FaultCounts, type FaultOptions, withFaults } from "./faults.ts";
export {
  SimHarness,
  type SimHarnessOptions,
  type SimReport,
  type SimWorkerOptions,
} from "./harness.ts";
export type { DropReason, HostOptions, SimHost } from "./host.ts";
export { type LinkOptions, SimNetwork, type SimNetworkStats } from "./network.ts";
export { hash32, SimRandom } from "./random.ts";
export type { SimTun, SimTunOptions } from "./tun.ts";
