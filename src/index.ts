/** bun-sansio: a sans-IO runtime for Bun on Linux. */
export * from "./task/index.ts";
