/** bun-sansio: a sans-IO runtime for Bun on Linux. */

export * from "./app/index.ts";
export * from "./backend/index.ts";
export * from "./bus/index.ts";
export * from "./controller/index.ts";
export * from "./io/index.ts";
export * from "./ring/index.ts";
export * from "./sim/index.ts";
export * from "./sys/index.ts";
export * from "./task/index.ts";
export * from "./wire/index.ts";
export * from "./worker/index.ts";
