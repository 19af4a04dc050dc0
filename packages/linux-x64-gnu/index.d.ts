/** The path of the prebuilt bun-sansio shim for Linux x64 with glibc (embedded when compiled). */
declare const path: string;
export default path;
