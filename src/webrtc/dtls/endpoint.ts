/**
 * What the two sides of a DTLS 1.2 handshake share (RFC 6347, RFC 5246, RFC 7627), as the base
 * of `DtlsServer` and `DtlsClient`: records in (epoch 0 in the clear, epoch 1 under
 * AES-128-GCM, epoch-1 records that come before the keys held until they exist), handshake
 * messages reassembled in order and hashed into the transcript, flights sent in records packed
 * to the MTU with fresh record numbers each time, retransmission on deadlines (from 1 s for each
 * new flight, doubling up to 60 s) and when the peer repeats the end of its previous flight, a handshake deadline, alerts,
 * close_notify, and the keying-material exporter. A role says what its messages mean
 * (`onMessage`) and which of the peer's messages end a flight. Pure: `now` comes in, datagrams,
 * deadlines and events come out.
 */
import { randomBytes } from "node:crypto";
import { RejectCounts, reject } from "../reject.ts";
import { type DtlsCertificate, fingerprintOf, sameFingerprint } from "./certificate.ts";
import {
  exportKeyingMaterial,
  extendedMasterSecret,
  GcmRecordCipher,
  keyBlock,
  sha256,
  verifyData,
} from "./crypto.ts";
import { DTLS12, HandshakeType } from "./hello.ts";
import { parseCertificate } from "./messages.ts";
import {
  ContentType,
  fragmentHandshake,
  type HandshakeMessage,
  HandshakeReassembler,
  parseHandshakeFragments,
  parseRecords,
  writeRecord,
} from "./record.ts";

/** What both roles need. */
export interface DtlsEndpointOptions {
  readonly certificate: DtlsCertificate;
  /** The peer's `a=fingerprint:sha-256`; its certificate must match (required by WebRTC). */
  readonly remoteFingerprint: string;
  /** SRTP protection profiles taken (RFC 5764 ids), preferred first. */
  readonly srtpProfiles: readonly number[];
  /** Largest datagram (default 1200). */
  readonly mtu?: number;
  /** First retransmission timeout (default 1000 ms; doubles up to 60 s). */
  readonly initialRetransmitMs?: number;
  /**
   * How long a handshake may take from its first flight (default 30,000 ms): a flight due for
   * retransmission past it fails the handshake instead ("the peer did not answer").
   */
  readonly handshakeTimeoutMs?: number;
  /** Random bytes (default node:crypto's randomBytes). */
  readonly random?: (n: number) => Uint8Array;
}

/** What `pollEvent` tells, on either side. */
export type DtlsEvent =
  | {
      readonly type: "connected";
      /** The SRTP protection profile negotiated (RFC 5764 id). */
      readonly srtpProfile: number;
      /** The peer's certificate (DER), whose fingerprint matched `remoteFingerprint`. */
      readonly remoteCertificate: Uint8Array;
    }
  | { readonly type: "failed"; readonly reason: string }
  | { readonly type: "closed" };

/** Alert descriptions sent (RFC 5246 §7.2). */
export const Alert = {
  CLOSE_NOTIFY: 0,
  UNEXPECTED_MESSAGE: 10,
  HANDSHAKE_FAILURE: 40,
  BAD_CERTIFICATE: 42,
  ILLEGAL_PARAMETER: 47,
  DECRYPT_ERROR: 51,
} as const;

/** A handshake message of ours: type, message_seq, body. */
interface OwnMessage {
  readonly type: number;
  readonly seq: number;
  readonly body: Uint8Array;
}

/** A flight: its handshake messages, then ChangeCipherSpec and this Finished when it ends one. */
interface Flight {
  readonly messages: readonly OwnMessage[];
  readonly finished?: Uint8Array;
  /** Whether it goes again on a deadline (false for the handshake's last flight). */
  readonly timed: boolean;
}

const MAX_EARLY_RECORDS = 8;

/** See the module comment; `Phase` is the role's own handshake phases. */
export abstract class DtlsEndpoint<Phase extends string> {
  /** Refused records and messages, by reason. */
  readonly rejects = new RejectCounts();
  /** Flights sent again (on a deadline or because the peer repeated itself). */
  retransmissions = 0;
  protected readonly options: DtlsEndpointOptions;
  protected readonly random: (n: number) => Uint8Array;
  protected phase: Phase | "connected" | "failed" | "closed";
  protected reassembler = new HandshakeReassembler();
  /** The handshake messages hashed so far, each with its unfragmented 12-byte header. */
  protected readonly transcript: Uint8Array[] = [];
  /** The next message_seq of ours. */
  protected messageSeq = 0;
  protected clientRandom = new Uint8Array(0);
  protected serverRandom = new Uint8Array(0);
  protected srtpProfile = 0;
  protected remoteCertificate: Uint8Array | undefined;
  readonly #isClient: boolean;
  readonly #mtu: number;
  readonly #transmits: Uint8Array[] = [];
  readonly #events: DtlsEvent[] = [];
  readonly #recordSeq = [0, 0];
  #writeEpoch = 0;
  #flight: Flight | undefined;
  #retransmitAt: number | undefined;
  #retransmitMs: number;
  #handshakeDeadline: number | undefined;
  #master: Uint8Array | undefined;
  #read: GcmRecordCipher | undefined;
  #write: GcmRecordCipher | undefined;
  readonly #early: { seq: number; type: number; version: number; fragment: Uint8Array }[] = [];

  protected constructor(options: DtlsEndpointOptions, isClient: boolean, first: Phase) {
    this.options = options;
    this.#isClient = isClient;
    this.phase = first;
    this.random = options.random ?? randomBytes;
    this.#mtu = options.mtu ?? 1200;
    if (this.#mtu < 256) throw new RangeError("a DTLS MTU below 256 bytes cannot carry a flight");
    this.#retransmitMs = options.initialRetransmitMs ?? 1000;
  }

  /** Where the handshake stands: the role's phases, then connected, failed or closed. */
  get state(): Phase | "connected" | "failed" | "closed" {
    return this.phase;
  }

  /** Feeds one DTLS datagram (the caller demultiplexed it by its first byte, RFC 7983). */
  handleDatagram(now: number, data: Uint8Array): void {
    if (this.#ended()) return;
    const records = parseRecords(data);
    if (!records.ok) {
      this.rejects.add(records);
      return;
    }
    let repeated = false;
    for (const r of records.value) {
      if (r.epoch === 0) {
        if (r.type === ContentType.HANDSHAKE) repeated = this.#handshakeRecord(now, r.fragment);
        else if (r.type === ContentType.CHANGE_CIPHER_SPEC)
          continue; // the keys follow the messages
        else if (r.type === ContentType.ALERT) this.#alert(r.fragment);
        else this.rejects.add(reject("dtls-unexpected-record"));
      } else if (r.epoch === 1) {
        if (this.#read === undefined) {
          if (this.#early.length < MAX_EARLY_RECORDS)
            this.#early.push({ ...r, fragment: r.fragment.slice() });
          else this.rejects.add(reject("dtls-early-record-dropped"));
          continue;
        }
        repeated = this.#protected(now, r.type, r.version, r.seq, r.fragment) || repeated;
      } else this.rejects.add(reject("dtls-bad-epoch"));
      if (this.#ended()) return;
    }
    // the peer sent the end of its previous flight again: ours was lost (or is late)
    if (repeated && this.#flight !== undefined && this.repeatsOnPeerRepeat()) {
      this.retransmissions++;
      this.#sendFlight(now);
    }
  }

  /** Sends the last flight again when its deadline has passed, or fails at the handshake deadline. */
  handleTimeout(now: number): void {
    if (this.#handshakeDeadline !== undefined && now >= this.#handshakeDeadline) {
      this.fail(
        `the handshake did not complete in ${this.options.handshakeTimeoutMs ?? 30_000} ms: the peer did not answer (${this.retransmissions} retransmissions)`,
        undefined,
      );
      return;
    }
    if (this.#retransmitAt === undefined || now < this.#retransmitAt) return;
    this.#retransmitMs = Math.min(60_000, this.#retransmitMs * 2);
    this.retransmissions++;
    this.#sendFlight(now);
  }

  /** The next datagram to send. */
  pollTransmit(): Uint8Array | undefined {
    return this.#transmits.shift();
  }

  /** The next event. */
  pollEvent(): DtlsEvent | undefined {
    return this.#events.shift();
  }

  /** When `handleTimeout` must next be called (undefined: nothing pending). */
  pollTimeout(): number | undefined {
    if (this.#retransmitAt === undefined) return undefined;
    return this.#handshakeDeadline === undefined
      ? this.#retransmitAt
      : Math.min(this.#retransmitAt, this.#handshakeDeadline);
  }

  /** RFC 5705 keying material (no context) once connected; throws before. */
  exportKeyingMaterial(label: string, length: number): Uint8Array {
    if (this.phase !== "connected" || this.#master === undefined)
      throw new Error(`DTLS is ${this.phase}, not connected: there is no keying material`);
    return exportKeyingMaterial(this.#master, this.clientRandom, this.serverRandom, label, length);
  }

  /** Ends the association: a close_notify alert goes out and the `closed` event follows. */
  close(): void {
    if (this.#ended()) return;
    this.#emit([
      { type: ContentType.ALERT, epoch: this.#writeEpoch, fragment: Uint8Array.of(1, 0) },
    ]);
    this.#end("closed");
    this.#events.push({ type: "closed" });
  }

  /** Handles one reassembled handshake message, in order. */
  protected abstract onMessage(now: number, m: HandshakeMessage): void;

  /** Whether a peer's repeat of `msgType` (a retransmission) ends one of its flights. */
  protected abstract endsPeerFlight(msgType: number): boolean;

  /** Whether, in the current phase, a repeat of the peer's flight means ours must go again. */
  protected abstract repeatsOnPeerRepeat(): boolean;

  /** Called for a fragment older than the next message expected; true to restart there. */
  protected rewindTo(_messageSeq: number): boolean {
    return false;
  }

  /** Appends a received message to the transcript, as if unfragmented. */
  protected hash(m: HandshakeMessage): void {
    this.transcript.push(framed(m.msgType, m.messageSeq, m.body));
  }

  /** SHA-256 of the transcript so far. */
  protected transcriptHash(): Uint8Array {
    return sha256(Buffer.concat(this.transcript));
  }

  /** A message of ours with the next message_seq, added to the transcript. */
  protected own(type: number, body: Uint8Array): OwnMessage {
    const m = { type, seq: this.messageSeq++, body };
    this.transcript.push(framed(type, m.seq, body));
    return m;
  }

  /**
   * Checks the peer's Certificate body: the leaf must be there and have the SDP's fingerprint.
   * Returns the leaf, or fails the handshake and returns undefined.
   */
  protected takeRemoteCertificate(m: HandshakeMessage): Uint8Array | undefined {
    const certs = parseCertificate(m.body);
    const leaf = certs.ok ? certs.value[0] : undefined;
    if (leaf === undefined) {
      this.fail("the peer sent no certificate", Alert.BAD_CERTIFICATE);
      return undefined;
    }
    const fingerprint = fingerprintOf(leaf);
    if (!sameFingerprint(fingerprint, this.options.remoteFingerprint)) {
      this.fail(
        `the peer's certificate ${fingerprint} is not the one its SDP names`,
        Alert.BAD_CERTIFICATE,
      );
      return undefined;
    }
    this.remoteCertificate = leaf.slice();
    this.hash(m);
    return this.remoteCertificate;
  }

  /**
   * Derives the master secret from `preMaster` and the transcript so far (RFC 7627: it ends with
   * the ClientKeyExchange), then the record keys; epoch-1 records held back are opened now.
   */
  protected installKeys(now: number, preMaster: Uint8Array): void {
    this.#master = extendedMasterSecret(preMaster, this.transcriptHash());
    const k = keyBlock(this.#master, this.clientRandom, this.serverRandom);
    const client = new GcmRecordCipher(k.clientKey, k.clientIv);
    const server = new GcmRecordCipher(k.serverKey, k.serverIv);
    this.#read = this.#isClient ? server : client;
    this.#write = this.#isClient ? client : server;
    for (const r of this.#early.splice(0)) {
      this.#protected(now, r.type, r.version, r.seq, r.fragment);
      if (this.#ended()) return;
    }
  }

  /** The verify data of a Finished with `label` over the transcript so far (needs the keys). */
  protected finishedData(label: "client finished" | "server finished"): Uint8Array {
    if (this.#master === undefined) throw new Error("Finished before the keys");
    return verifyData(this.#master, label, this.transcriptHash());
  }

  /** Whether the keys are installed (the key exchange is done). */
  protected get hasKeys(): boolean {
    return this.#master !== undefined;
  }

  /**
   * Sends `messages` as the next flight, then ChangeCipherSpec and a Finished with `finished`
   * when given; `timed` flights go again on deadlines until the peer's next flight comes.
   */
  protected sendFlight(
    now: number,
    messages: readonly OwnMessage[],
    finished: Uint8Array | undefined,
    timed: boolean,
  ): void {
    if (finished === undefined) this.#flight = { messages, timed };
    else {
      const m = this.own(HandshakeType.FINISHED, finished);
      this.#flight = { messages, timed, finished: framed(m.type, m.seq, m.body) };
    }
    this.#handshakeDeadline ??= now + (this.options.handshakeTimeoutMs ?? 30_000);
    this.#retransmitMs = this.options.initialRetransmitMs ?? 1000; // a new flight: no loss seen yet
    this.#sendFlight(now);
  }

  /** Sends one record outside any flight (a HelloVerifyRequest: stateless, never repeated). */
  protected sendStateless(type: number, seq: number, body: Uint8Array): void {
    this.#emit([{ type: ContentType.HANDSHAKE, epoch: 0, fragment: framed(type, seq, body) }]);
  }

  /** The handshake is done: no more retransmission on deadlines, and `connected` is told. */
  protected connected(): void {
    this.#retransmitAt = undefined;
    this.#handshakeDeadline = undefined;
    this.phase = "connected";
    this.#events.push({
      type: "connected",
      srtpProfile: this.srtpProfile,
      remoteCertificate: this.remoteCertificate ?? new Uint8Array(0),
    });
  }

  /** Fails the handshake with `reason`, sending a fatal `alert` when given. */
  protected fail(reason: string, alert: number | undefined): void {
    if (alert !== undefined)
      this.#emit([
        { type: ContentType.ALERT, epoch: this.#writeEpoch, fragment: Uint8Array.of(2, alert) },
      ]);
    this.#end("failed");
    this.#events.push({ type: "failed", reason });
  }

  /** Failed or closed (read through a method: handlers change the phase behind the narrowing). */
  #ended(): boolean {
    return this.phase === "failed" || this.phase === "closed";
  }

  #end(phase: "failed" | "closed"): void {
    this.phase = phase;
    this.#retransmitAt = undefined;
    this.#handshakeDeadline = undefined;
    this.#flight = undefined;
  }

  /** An epoch-1 record: opened, then handled; returns whether it repeated the peer's flight end. */
  #protected(now: number, type: number, version: number, seq: number, sealed: Uint8Array): boolean {
    const plain = (this.#read as GcmRecordCipher).open(1, seq, type, version, sealed);
    if (plain === undefined) {
      this.rejects.add(reject("dtls-bad-record-mac"));
      return false;
    }
    if (type === ContentType.HANDSHAKE) return this.#handshakeRecord(now, plain);
    if (type === ContentType.ALERT) this.#alert(plain);
    else if (type === ContentType.APPLICATION_DATA)
      this.rejects.add(reject("dtls-application-data-ignored"));
    else this.rejects.add(reject("dtls-unexpected-record"));
    return false;
  }

  #alert(fragment: Uint8Array): void {
    const level = fragment[0];
    const description = fragment[1];
    if (fragment.length !== 2) this.rejects.add(reject("dtls-bad-alert"));
    else if (description === Alert.CLOSE_NOTIFY) {
      this.#end("closed");
      this.#events.push({ type: "closed" });
    } else if (level === 2) this.fail(`the peer sent fatal alert ${description}`, undefined);
  }

  /** A handshake record's fragments; returns whether one repeated the end of a peer flight. */
  #handshakeRecord(now: number, fragment: Uint8Array): boolean {
    const fragments = parseHandshakeFragments(fragment);
    if (!fragments.ok) {
      this.rejects.add(fragments);
      return false;
    }
    let repeated = false;
    for (const f of fragments.value) {
      if (f.messageSeq < this.reassembler.next) {
        if (this.rewindTo(f.messageSeq)) this.reassembler = new HandshakeReassembler(f.messageSeq);
        else if (this.endsPeerFlight(f.msgType)) repeated = true;
      }
      const refused = this.reassembler.add(f);
      if (refused !== undefined) this.rejects.add(reject(refused));
    }
    for (let m = this.reassembler.pop(); m !== undefined; m = this.reassembler.pop()) {
      this.onMessage(now, m);
      if (this.#ended()) return false;
    }
    return repeated;
  }

  /** Sends the current flight, fragmented to the MTU, with fresh record numbers. */
  #sendFlight(now: number): void {
    const f = this.#flight;
    if (f === undefined) return;
    const max = this.#mtu - 13 - 12 - 24;
    const records: { type: number; epoch: number; fragment: Uint8Array }[] = [];
    for (const m of f.messages) {
      for (const frag of fragmentHandshake(m.type, m.seq, m.body, max))
        records.push({ type: ContentType.HANDSHAKE, epoch: 0, fragment: frag });
    }
    if (f.finished !== undefined) {
      records.push({ type: ContentType.CHANGE_CIPHER_SPEC, epoch: 0, fragment: Uint8Array.of(1) });
      records.push({ type: ContentType.HANDSHAKE, epoch: 1, fragment: f.finished });
      this.#writeEpoch = 1;
    }
    this.#emit(records);
    this.#retransmitAt = f.timed ? now + this.#retransmitMs : undefined;
  }

  /** Packs `records` into datagrams of at most the MTU (sealing epoch 1). */
  #emit(records: readonly { type: number; epoch: number; fragment: Uint8Array }[]): void {
    const out = new Uint8Array(this.#mtu + 64);
    let at = 0;
    for (const r of records) {
      const seq = this.#recordSeq[r.epoch] as number;
      this.#recordSeq[r.epoch] = seq + 1;
      const fragment =
        r.epoch === 1
          ? (this.#write as GcmRecordCipher).seal(1, seq, r.type, DTLS12, r.fragment)
          : r.fragment;
      if (at > 0 && at + 13 + fragment.length > this.#mtu) {
        this.#transmits.push(out.slice(0, at));
        at = 0;
      }
      at += writeRecord(out, at, { type: r.type, version: DTLS12, epoch: r.epoch, seq, fragment });
    }
    if (at > 0) this.#transmits.push(out.slice(0, at));
  }
}

/** Handshake message `type`/`seq`/`body` with its 12-byte header, unfragmented. */
function framed(type: number, seq: number, body: Uint8Array): Uint8Array {
  return fragmentHandshake(type, seq, body, Math.max(1, body.length))[0] as Uint8Array;
}
