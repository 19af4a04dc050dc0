/** The bus: one SPSC ring per ordered pair of endpoints, direct sends, broadcast, pub/sub. */

export { type Codec, JsonBytesCodec, type Structured } from "./codec.ts";
export {
  type BroadcastOptions,
  BusEndpoint,
  type BusEndpointOptions,
  type BusFault,
  type BusMessage,
  type BusParkResult,
  type BusStats,
  MAX_CHANNEL,
  type MessageKind,
  QUEUED_MESSAGE_OVERHEAD,
  type SendOptions,
  type SendResult,
} from "./endpoint.ts";
export { type BusLayout, type BusLayoutOptions, createBusLayout, MAX_ENDPOINTS } from "./layout.ts";
