/**
 * The server side of a DTLS 1.2 handshake as a sans-IO state machine (RFC 6347, RFC 5246,
 * RFC 7627, RFC 5764) for TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 on P-256: an optional
 * HelloVerifyRequest cookie, then ServerHello, Certificate, ServerKeyExchange,
 * CertificateRequest and ServerHelloDone; the client's Certificate (checked against the SDP
 * fingerprint), ClientKeyExchange, CertificateVerify, ChangeCipherSpec and Finished; then the
 * server's ChangeCipherSpec and Finished. Flights are sent again on deadlines (1 s doubling to
 * 60 s) and when the client's last flight comes again. Datagrams in, datagrams and deadlines and
 * events out; nothing reads a clock or touches a socket.
 */
import { randomBytes } from "node:crypto";
import { RejectCounts, reject } from "../reject.ts";
import {
  type DtlsCertificate,
  fingerprintOf,
  publicKeyOf,
  sameFingerprint,
} from "./certificate.ts";
import {
  EcdhP256,
  exportKeyingMaterial,
  extendedMasterSecret,
  GcmRecordCipher,
  keyBlock,
  sha256,
  signEcdsaSha256,
  verifyData,
  verifyEcdsaSha256,
} from "./crypto.ts";
import {
  CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256,
  chooseForClientHello,
  DTLS12,
  HandshakeType,
  parseClientHello,
  writeHelloVerifyRequest,
  writeServerHello,
} from "./hello.ts";
import {
  ecdheParams,
  helloCookie,
  parseCertificate,
  parseCertificateVerify,
  parseClientKeyExchange,
  serverKeyExchangeSigned,
  writeCertificate,
  writeCertificateRequest,
  writeServerKeyExchange,
} from "./messages.ts";
import {
  ContentType,
  fragmentHandshake,
  type HandshakeMessage,
  HandshakeReassembler,
  parseHandshakeFragments,
  parseRecords,
  writeRecord,
} from "./record.ts";

/** What the server needs. */
export interface DtlsServerOptions {
  readonly certificate: DtlsCertificate;
  /** The client's `a=fingerprint:sha-256`; its certificate must match (required by WebRTC). */
  readonly remoteFingerprint: string;
  /** SRTP profiles taken, preferred first. */
  readonly srtpProfiles: readonly number[];
  /** With a secret, a ClientHello without a valid cookie is answered by HelloVerifyRequest. */
  readonly cookieSecret?: Uint8Array;
  /** The client's address as text, bound into the cookie. */
  readonly peer?: string;
  /** Largest datagram (default 1200). */
  readonly mtu?: number;
  /** First retransmission timeout (default 1000 ms; doubles to 60 s). */
  readonly initialRetransmitMs?: number;
  /** Random bytes (default node:crypto's randomBytes). */
  readonly random?: (n: number) => Uint8Array;
}

/** What `pollEvent` tells. */
export type DtlsServerEvent =
  | {
      readonly type: "connected";
      readonly srtpProfile: number;
      readonly remoteCertificate: Uint8Array;
    }
  | { readonly type: "failed"; readonly reason: string }
  | { readonly type: "closed" };

/** Alert descriptions sent on failure. */
const Alert = {
  CLOSE_NOTIFY: 0,
  UNEXPECTED: 10,
  BAD_RECORD_MAC: 20,
  HANDSHAKE_FAILURE: 40,
  BAD_CERTIFICATE: 42,
  DECRYPT_ERROR: 51,
} as const;

type Phase = "hello" | "flight4-wait" | "connected" | "failed" | "closed";

/** See the module comment. */
export class DtlsServer {
  /** Refused records and messages, by reason. */
  readonly rejects = new RejectCounts();
  /** HelloVerifyRequests sent (ClientHellos without a valid cookie). */
  helloVerifyRequests = 0;
  readonly #o: DtlsServerOptions;
  readonly #random: (n: number) => Uint8Array;
  readonly #mtu: number;
  readonly #transmits: Uint8Array[] = [];
  readonly #events: DtlsServerEvent[] = [];
  #phase: Phase = "hello";
  #reassembler = new HandshakeReassembler();
  /** The handshake messages hashed, each with its unfragmented 12-byte header. */
  readonly #transcript: Uint8Array[] = [];
  #messageSeq = 0;
  readonly #recordSeq = [0, 0];
  /** The flight sent last: its handshake messages (type, body, seq) and whether it ends with CCS + Finished. */
  #flight:
    | {
        readonly messages: { type: number; seq: number; body: Uint8Array }[];
        readonly finished?: Uint8Array;
      }
    | undefined;
  #retransmitAt: number | undefined;
  #retransmitMs: number;
  #clientRandom = new Uint8Array(0);
  #serverRandom = new Uint8Array(0);
  #ecdh: EcdhP256 | undefined;
  #srtpProfile = 0;
  #master: Uint8Array | undefined;
  #read: GcmRecordCipher | undefined;
  #write: GcmRecordCipher | undefined;
  #clientCert: Uint8Array | undefined;
  /** Epoch-1 records that came before the keys. */
  readonly #early: { seq: number; type: number; version: number; fragment: Uint8Array }[] = [];
  #ccsSeen = false;

  constructor(options: DtlsServerOptions) {
    this.#o = options;
    this.#random = options.random ?? randomBytes;
    this.#mtu = options.mtu ?? 1200;
    this.#retransmitMs = options.initialRetransmitMs ?? 1000;
  }

  /** Where the handshake stands. */
  get state(): Phase {
    return this.#phase;
  }

  /** Feeds one DTLS datagram. */
  handleDatagram(now: number, data: Uint8Array): void {
    if (this.#ended()) return;
    const records = parseRecords(data);
    if (!records.ok) {
      this.rejects.add(records);
      return;
    }
    for (const r of records.value) {
      if (r.epoch === 0) this.#plain(now, r.type, r.fragment);
      else if (r.epoch === 1) {
        if (this.#read === undefined) {
          if (this.#early.length < 8)
            this.#early.push({
              seq: r.seq,
              type: r.type,
              version: r.version,
              fragment: r.fragment.slice(),
            });
          continue;
        }
        const plain = this.#read.open(1, r.seq, r.type, r.version, r.fragment);
        if (plain === undefined) {
          this.rejects.add(reject("dtls-bad-record-mac"));
          continue;
        }
        this.#protected(now, r.type, plain);
      } else this.rejects.add(reject("dtls-bad-epoch"));
      if (this.#ended()) return;
    }
  }

  /** Failed or closed (read through a method: handlers change the phase behind the narrowing). */
  #ended(): boolean {
    return this.#phase === "failed" || this.#phase === "closed";
  }

  /** Sends the last flight again when its deadline has passed. */
  handleTimeout(now: number): void {
    if (this.#retransmitAt === undefined || now < this.#retransmitAt) return;
    this.#retransmitMs = Math.min(60_000, this.#retransmitMs * 2);
    this.#sendFlight(now);
  }

  /** The next datagram to send. */
  pollTransmit(): Uint8Array | undefined {
    return this.#transmits.shift();
  }

  /** The next event. */
  pollEvent(): DtlsServerEvent | undefined {
    return this.#events.shift();
  }

  /** When `handleTimeout` must next be called. */
  pollTimeout(): number | undefined {
    return this.#retransmitAt;
  }

  /** RFC 5705 keying material (no context), once connected. */
  exportKeyingMaterial(label: string, length: number): Uint8Array {
    if (this.#master === undefined)
      throw new Error("DTLS is not connected: no keying material yet");
    return exportKeyingMaterial(
      this.#master,
      this.#clientRandom,
      this.#serverRandom,
      label,
      length,
    );
  }

  #plain(now: number, type: number, fragment: Uint8Array): void {
    if (type === ContentType.HANDSHAKE) this.#handshakeRecord(now, fragment);
    else if (type === ContentType.CHANGE_CIPHER_SPEC) this.#ccsSeen = true;
    else if (type === ContentType.ALERT) this.#alert(fragment);
    else this.rejects.add(reject("dtls-unexpected-record"));
  }

  #protected(now: number, type: number, plain: Uint8Array): void {
    if (type === ContentType.HANDSHAKE) this.#handshakeRecord(now, plain);
    else if (type === ContentType.ALERT) this.#alert(plain);
    else if (type === ContentType.APPLICATION_DATA)
      this.rejects.add(reject("dtls-application-data-ignored"));
    else this.rejects.add(reject("dtls-unexpected-record"));
  }

  #alert(fragment: Uint8Array): void {
    const level = fragment[0];
    const description = fragment[1];
    if (description === Alert.CLOSE_NOTIFY) {
      this.#phase = "closed";
      this.#retransmitAt = undefined;
      this.#events.push({ type: "closed" });
    } else if (level === 2) this.#fail(`the client sent fatal alert ${description}`, undefined);
  }

  #handshakeRecord(now: number, fragment: Uint8Array): void {
    const fragments = parseHandshakeFragments(fragment);
    if (!fragments.ok) {
      this.rejects.add(fragments);
      return;
    }
    let old = false;
    for (const f of fragments.value) {
      if (f.messageSeq < this.#reassembler.next) old = true;
      const refused = this.#reassembler.add(f);
      if (refused !== undefined) this.rejects.add(reject(refused));
    }
    // the client sent its last flight again: ours was lost (or is late): send ours again
    if (old && (this.#phase === "connected" || this.#phase === "flight4-wait"))
      this.#sendFlight(now);
    for (let m = this.#reassembler.pop(); m !== undefined; m = this.#reassembler.pop()) {
      this.#message(now, m);
      if (this.#ended()) return;
    }
  }

  #message(now: number, m: HandshakeMessage): void {
    if (this.#phase === "hello") {
      if (m.msgType !== HandshakeType.CLIENT_HELLO) {
        this.#fail("expected a ClientHello", Alert.UNEXPECTED);
        return;
      }
      this.#clientHello(now, m);
      return;
    }
    if (this.#phase !== "flight4-wait") return;
    switch (m.msgType) {
      case HandshakeType.CERTIFICATE: {
        const certs = parseCertificate(m.body);
        const leaf = certs.ok ? certs.value[0] : undefined;
        if (leaf === undefined) {
          this.#fail("the client sent no certificate", Alert.BAD_CERTIFICATE);
          return;
        }
        if (!sameFingerprint(fingerprintOf(leaf), this.#o.remoteFingerprint)) {
          this.#fail(
            `the client's certificate ${fingerprintOf(leaf)} is not the one its SDP names`,
            Alert.BAD_CERTIFICATE,
          );
          return;
        }
        this.#clientCert = leaf.slice();
        this.#hash(m);
        return;
      }
      case HandshakeType.CLIENT_KEY_EXCHANGE: {
        const point = parseClientKeyExchange(m.body);
        const secret = point.ok ? this.#ecdh?.computeSecret(point.value) : undefined;
        if (secret === undefined) {
          this.#fail("bad ClientKeyExchange", Alert.HANDSHAKE_FAILURE);
          return;
        }
        this.#hash(m);
        this.#master = extendedMasterSecret(secret, sha256(Buffer.concat(this.#transcript)));
        const keys = keyBlock(this.#master, this.#clientRandom, this.#serverRandom);
        this.#read = new GcmRecordCipher(keys.clientKey, keys.clientIv);
        this.#write = new GcmRecordCipher(keys.serverKey, keys.serverIv);
        for (const r of this.#early.splice(0)) {
          const plain = this.#read.open(1, r.seq, r.type, r.version, r.fragment);
          if (plain === undefined) this.rejects.add(reject("dtls-bad-record-mac"));
          else this.#protected(now, r.type, plain);
        }
        return;
      }
      case HandshakeType.CERTIFICATE_VERIFY: {
        const cv = parseCertificateVerify(m.body);
        const key = this.#clientCert === undefined ? undefined : publicKeyOf(this.#clientCert);
        if (
          !cv.ok ||
          key === undefined ||
          !verifyEcdsaSha256(key, Buffer.concat(this.#transcript), cv.value.signature)
        ) {
          this.#fail("the client's CertificateVerify does not verify", Alert.DECRYPT_ERROR);
          return;
        }
        this.#hash(m);
        return;
      }
      case HandshakeType.FINISHED: {
        const master = this.#master;
        if (master === undefined || this.#clientCert === undefined) {
          this.#fail("Finished before the client's certificate and key exchange", Alert.UNEXPECTED);
          return;
        }
        const expected = verifyData(
          master,
          "client finished",
          sha256(Buffer.concat(this.#transcript)),
        );
        if (!Buffer.from(expected).equals(Buffer.from(m.body))) {
          this.#fail("the client's Finished does not match", Alert.DECRYPT_ERROR);
          return;
        }
        this.#hash(m);
        const ours = verifyData(master, "server finished", sha256(Buffer.concat(this.#transcript)));
        this.#flight = {
          messages: [],
          finished: this.#framed(HandshakeType.FINISHED, this.#messageSeq++, ours),
        };
        this.#retransmitAt = undefined;
        this.#sendFlight(now);
        this.#retransmitAt = undefined; // the last flight is sent again only when the client repeats
        this.#phase = "connected";
        this.#events.push({
          type: "connected",
          srtpProfile: this.#srtpProfile,
          remoteCertificate: this.#clientCert,
        });
        return;
      }
      default:
        this.#fail(`unexpected handshake message ${m.msgType}`, Alert.UNEXPECTED);
    }
  }

  #clientHello(now: number, m: HandshakeMessage): void {
    const hello = parseClientHello(m.body);
    if (!hello.ok) {
      this.#fail("bad ClientHello", Alert.HANDSHAKE_FAILURE);
      return;
    }
    const h = hello.value;
    const secret = this.#o.cookieSecret;
    if (secret !== undefined) {
      const cookie = helloCookie(secret, this.#o.peer ?? "", h.random);
      if (!Buffer.from(h.cookie).equals(Buffer.from(cookie))) {
        // stateless: answer and forget; the next ClientHello has message_seq 1
        this.helloVerifyRequests++;
        const hvr = this.#framed(
          HandshakeType.HELLO_VERIFY_REQUEST,
          m.messageSeq,
          writeHelloVerifyRequest(cookie),
        );
        this.#emit([{ type: ContentType.HANDSHAKE, epoch: 0, fragment: hvr }]);
        this.#reassembler = new HandshakeReassembler(m.messageSeq + 1);
        this.#messageSeq = m.messageSeq + 1;
        return;
      }
    }
    const choice = chooseForClientHello(h, this.#o.srtpProfiles);
    if (!choice.ok) {
      this.#fail(choice.why, Alert.HANDSHAKE_FAILURE);
      return;
    }
    this.#srtpProfile = choice.srtpProfile;
    this.#clientRandom = h.random.slice();
    this.#serverRandom = this.#random(32).slice();
    this.#ecdh = new EcdhP256();
    this.#messageSeq = m.messageSeq;
    this.#hash(m);
    const params = ecdheParams(this.#ecdh.publicKey);
    const signature = signEcdsaSha256(
      this.#o.certificate.privateKey,
      serverKeyExchangeSigned(this.#clientRandom, this.#serverRandom, params),
    );
    const messages = [
      {
        type: HandshakeType.SERVER_HELLO,
        body: writeServerHello(
          this.#serverRandom,
          CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256,
          this.#srtpProfile,
        ),
      },
      { type: HandshakeType.CERTIFICATE, body: writeCertificate([this.#o.certificate.der]) },
      { type: HandshakeType.SERVER_KEY_EXCHANGE, body: writeServerKeyExchange(params, signature) },
      { type: HandshakeType.CERTIFICATE_REQUEST, body: writeCertificateRequest() },
      { type: HandshakeType.SERVER_HELLO_DONE, body: new Uint8Array(0) },
    ].map((x) => ({ ...x, seq: this.#messageSeq++ }));
    for (const x of messages) this.#transcript.push(this.#framed(x.type, x.seq, x.body));
    this.#flight = { messages };
    this.#phase = "flight4-wait";
    this.#sendFlight(now);
  }

  /** Appends `m` to the transcript as if unfragmented. */
  #hash(m: HandshakeMessage): void {
    this.#transcript.push(this.#framed(m.msgType, m.messageSeq, m.body));
  }

  /** Handshake message `type`/`seq`/`body` with its 12-byte header, unfragmented. */
  #framed(type: number, seq: number, body: Uint8Array): Uint8Array {
    return fragmentHandshake(type, seq, body, Math.max(1, body.length))[0] as Uint8Array;
  }

  /** Sends the current flight (again), fragmented to the MTU, with fresh record numbers. */
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
    }
    this.#emit(records);
    this.#retransmitAt = now + this.#retransmitMs;
  }

  /** Packs `records` into datagrams of at most the MTU (encrypting epoch 1). */
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

  #fail(reason: string, alert: number | undefined): void {
    if (alert !== undefined) {
      const epoch = this.#write !== undefined && this.#ccsSeen ? 1 : 0;
      this.#emit([{ type: ContentType.ALERT, epoch, fragment: Uint8Array.of(2, alert) }]);
    }
    this.#phase = "failed";
    this.#retransmitAt = undefined;
    this.#events.push({ type: "failed", reason });
  }
}
