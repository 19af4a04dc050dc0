/** Lock-free single-producer single-consumer rings on SharedArrayBuffer, codecs and parking. */
export { type Codec, JsonBytesCodec, type Structured } from "./codec.ts";
export { AtomicsDoorbell, type Parker, type ParkResult, type Waker } from "./doorbell.ts";
export { RecordTooLargeError, RingCorruptError } from "./errors.ts";
export { createRing, RingConsumer, RingProducer, recordSize } from "./spsc.ts";
