/** The bus: one SPSC ring per ordered pair of endpoints, direct sends, broadcast, pub/sub. */

export { type Codec, type Encodable, JsonBytesCodec, type Structured } from "./codec.ts";
export { BusEndpoint, MAX_CHANNEL } from "./endpoint.ts";
export { type BusLayout, type BusLayoutOptions, createBusLayout, MAX_ENDPOINTS } from "./layout.ts";
export { QUEUED_MESSAGE_OVERHEAD } from "./queue.ts";
export type {
  BroadcastOptions,
  BusEndpointOptions,
  BusFault,
  BusMessage,
  BusParkResult,
  BusStats,
  MessageKind,
  SendOptions,
  SendResult,
} from "./types.ts";
