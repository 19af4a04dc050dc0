/** The OS behind one small surface: the native shim, errno text and limits, the calling thread. */
export { ioError, openFileDescriptors } from "./errno.ts";
export { NativeLoadError } from "./native.ts";
export { currentCpu, pinThread, threadCpuMs } from "./thread.ts";
