// The path of this package's shim; `bun build --compile` embeds the file it names.
import path from "./libsansio.so" with { type: "file" };

export default path;
