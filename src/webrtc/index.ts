/**
 * bun-sansio/webrtc: a sans-IO WebRTC transport stack (see docs/webrtc.md). Every piece is a
 * pure state machine or codec in the sense of the runtime's sans-IO contract: no sockets, no
 * timers, no clock reads; `now` comes in, datagrams and deadlines come out, and wire input is
 * refused with a counted reason (`Parsed` / `RejectCounts`), never thrown.
 */
export * from "./dtls/certificate.ts";
export * from "./dtls/client.ts";
export * from "./dtls/crypto.ts";
export * from "./dtls/endpoint.ts";
export * from "./dtls/server.ts";
export * from "./ice-client.ts";
export * from "./ice-lite.ts";
export * from "./reject.ts";
export * from "./rtcp.ts";
export * from "./rtp.ts";
export * from "./sdp.ts";
export * from "./srtp.ts";
export * from "./stun.ts";
