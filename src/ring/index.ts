/** Lock-free single-producer single-consumer rings on SharedArrayBuffer, and parking. */
export { AtomicsDoorbell, type Parker, type ParkResult, type Waker } from "./doorbell.ts";
export { RecordTooLargeError, RingCorruptError } from "./errors.ts";
export { createRing, RingConsumer, RingProducer, recordSize } from "./spsc.ts";
