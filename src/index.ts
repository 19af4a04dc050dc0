/** bun-sansio: a sans-IO runtime for Bun on Linux. */
export * from "./bus/index.ts";
export * from "./ring/index.ts";
export * from "./task/index.ts";
