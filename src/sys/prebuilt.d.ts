/** The prebuilt shim packages (optional dependencies): each exports its libsansio.so's path. */
declare module "@bun-sansio/*" {
  const path: string;
  export default path;
}
