/** The path of the prebuilt bun-sansio shim for Linux arm64 with musl (embedded when compiled). */
declare const path: string;
export default path;
