/**
 * The client side of a DTLS 1.2 handshake as a sans-IO state machine (RFC 6347, RFC 5246,
 * RFC 7627, RFC 5764) for TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 on P-256, as a WebRTC peer
 * with `a=setup:active` runs it: ClientHello (again with the cookie when the server sends a
 * HelloVerifyRequest); the server's ServerHello, Certificate (checked against the SDP
 * fingerprint), ServerKeyExchange (its signature checked against that certificate),
 * CertificateRequest and ServerHelloDone; then Certificate, ClientKeyExchange, CertificateVerify,
 * ChangeCipherSpec and Finished, sent again on deadlines until the server's ChangeCipherSpec and
 * Finished come. Records, flights, retransmission and the exporter are `DtlsEndpoint`'s.
 */
import type { KeyObject } from "node:crypto";
import { reject } from "../reject.ts";
import { publicKeyOf } from "./certificate.ts";
import { EcdhP256, signEcdsaSha256, verifyEcdsaSha256 } from "./crypto.ts";
import { Alert, DtlsEndpoint, type DtlsEndpointOptions } from "./endpoint.ts";
import {
  CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256,
  DTLS12,
  HandshakeType,
  parseHelloVerifyRequest,
  parseServerHello,
  SIG_ECDSA_SECP256R1_SHA256,
  writeClientHello,
} from "./hello.ts";
import {
  acceptsEcdsaCertificate,
  parseServerKeyExchange,
  serverKeyExchangeSigned,
  writeCertificate,
  writeCertificateVerify,
  writeClientKeyExchange,
} from "./messages.ts";
import type { HandshakeMessage } from "./record.ts";

/** What the client needs: the options both roles take. */
export type DtlsClientOptions = DtlsEndpointOptions;

/**
 * The client's handshake phases: not started, waiting for a HelloVerifyRequest or ServerHello,
 * reading the server's flight, waiting for the server's Finished.
 */
export type DtlsClientPhase = "idle" | "hello" | "server-flight" | "finished-wait";

/** See the module comment. */
export class DtlsClient extends DtlsEndpoint<DtlsClientPhase> {
  /** HelloVerifyRequests answered (0 or 1). */
  helloVerifyRequests = 0;
  #serverKey: KeyObject | undefined;
  #serverPoint: Uint8Array | undefined;
  #certificateRequested = false;

  constructor(options: DtlsClientOptions) {
    super(options, true, "idle");
  }

  /** Starts the handshake: the ClientHello goes out. Once only. */
  connect(now: number): void {
    if (this.phase !== "idle") throw new Error(`connect() on a DTLS client that is ${this.phase}`);
    this.clientRandom = this.random(32).slice();
    this.phase = "hello";
    this.#sendHello(now, new Uint8Array(0));
  }

  protected endsPeerFlight(msgType: number): boolean {
    return (
      msgType === HandshakeType.HELLO_VERIFY_REQUEST ||
      msgType === HandshakeType.SERVER_HELLO_DONE ||
      msgType === HandshakeType.FINISHED
    );
  }

  protected repeatsOnPeerRepeat(): boolean {
    return this.phase === "hello" || this.phase === "finished-wait";
  }

  protected onMessage(now: number, m: HandshakeMessage): void {
    switch (this.phase) {
      case "hello":
        this.#hello(now, m);
        return;
      case "server-flight":
        this.#serverFlight(now, m);
        return;
      case "finished-wait":
        if (m.msgType !== HandshakeType.FINISHED) {
          this.fail(`unexpected handshake message ${m.msgType}`, Alert.UNEXPECTED_MESSAGE);
          return;
        }
        if (!Buffer.from(this.finishedData("server finished")).equals(m.body)) {
          this.fail("the server's Finished does not match", Alert.DECRYPT_ERROR);
          return;
        }
        this.hash(m);
        this.connected();
        return;
      default:
        this.rejects.add(reject("dtls-unexpected-message"));
    }
  }

  #sendHello(now: number, cookie: Uint8Array): void {
    const hello = this.own(
      HandshakeType.CLIENT_HELLO,
      writeClientHello(this.clientRandom, cookie, this.options.srtpProfiles),
    );
    this.sendFlight(now, [hello], undefined, true);
  }

  #hello(now: number, m: HandshakeMessage): void {
    if (m.msgType === HandshakeType.HELLO_VERIFY_REQUEST) {
      const cookie = parseHelloVerifyRequest(m.body);
      if (!cookie.ok || this.helloVerifyRequests > 0) {
        this.fail(
          cookie.ok ? "a second HelloVerifyRequest" : "bad HelloVerifyRequest",
          Alert.ILLEGAL_PARAMETER,
        );
        return;
      }
      this.helloVerifyRequests++;
      // RFC 6347 §4.2.1: the first ClientHello and the HelloVerifyRequest are not hashed
      this.transcript.length = 0;
      this.#sendHello(now, cookie.value);
      return;
    }
    if (m.msgType !== HandshakeType.SERVER_HELLO) {
      this.fail("expected a ServerHello", Alert.UNEXPECTED_MESSAGE);
      return;
    }
    const hello = parseServerHello(m.body);
    const h = hello.ok ? hello.value : undefined;
    const why =
      h === undefined
        ? "bad ServerHello"
        : h.version !== DTLS12
          ? "the server did not choose DTLS 1.2"
          : h.cipherSuite !== CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256 || h.compression !== 0
            ? "the server chose a cipher suite or compression not offered"
            : !h.extendedMasterSecret
              ? "the server did not take extended_master_secret (RFC 7627 is required)"
              : h.srtpProfile === undefined || !this.options.srtpProfiles.includes(h.srtpProfile)
                ? "the server chose no SRTP profile, or one not offered"
                : undefined;
    if (h === undefined || why !== undefined) {
      this.fail(why ?? "bad ServerHello", Alert.HANDSHAKE_FAILURE);
      return;
    }
    this.serverRandom = h.random.slice();
    this.srtpProfile = h.srtpProfile as number;
    this.hash(m);
    this.phase = "server-flight";
  }

  #serverFlight(now: number, m: HandshakeMessage): void {
    switch (m.msgType) {
      case HandshakeType.CERTIFICATE: {
        const leaf = this.takeRemoteCertificate(m);
        if (leaf === undefined) return;
        this.#serverKey = publicKeyOf(leaf);
        if (this.#serverKey === undefined)
          this.fail("the server's certificate has no P-256 public key", Alert.BAD_CERTIFICATE);
        return;
      }
      case HandshakeType.SERVER_KEY_EXCHANGE: {
        const ske = parseServerKeyExchange(m.body);
        if (this.#serverKey === undefined) {
          this.fail("ServerKeyExchange before the certificate", Alert.UNEXPECTED_MESSAGE);
          return;
        }
        if (
          !ske.ok ||
          ske.value.signatureAlgorithm !== SIG_ECDSA_SECP256R1_SHA256 ||
          !verifyEcdsaSha256(
            this.#serverKey,
            serverKeyExchangeSigned(this.clientRandom, this.serverRandom, ske.value.params),
            ske.value.signature,
          )
        ) {
          this.fail("the server's key exchange signature does not verify", Alert.DECRYPT_ERROR);
          return;
        }
        this.#serverPoint = ske.value.publicKey.slice();
        this.hash(m);
        return;
      }
      case HandshakeType.CERTIFICATE_REQUEST: {
        const takes = acceptsEcdsaCertificate(m.body);
        if (!takes.ok || !takes.value) {
          this.fail(
            "the server's CertificateRequest does not take an ECDSA P-256 certificate",
            Alert.HANDSHAKE_FAILURE,
          );
          return;
        }
        this.#certificateRequested = true;
        this.hash(m);
        return;
      }
      case HandshakeType.SERVER_HELLO_DONE:
        this.hash(m);
        this.#keyExchange(now);
        return;
      default:
        this.fail(`unexpected handshake message ${m.msgType}`, Alert.UNEXPECTED_MESSAGE);
    }
  }

  /** Flight 5: Certificate, ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished. */
  #keyExchange(now: number): void {
    const ecdh = new EcdhP256();
    const secret =
      this.#serverPoint === undefined ? undefined : ecdh.computeSecret(this.#serverPoint);
    if (secret === undefined) {
      this.fail(
        this.#serverPoint === undefined
          ? "ServerHelloDone before ServerKeyExchange"
          : "the server's ECDHE point is not on P-256",
        Alert.ILLEGAL_PARAMETER,
      );
      return;
    }
    const flight = [];
    if (this.#certificateRequested)
      flight.push(
        this.own(HandshakeType.CERTIFICATE, writeCertificate([this.options.certificate.der])),
      );
    flight.push(
      this.own(HandshakeType.CLIENT_KEY_EXCHANGE, writeClientKeyExchange(ecdh.publicKey)),
    );
    this.installKeys(now, secret);
    if (this.#certificateRequested) {
      const signature = signEcdsaSha256(
        this.options.certificate.privateKey,
        Buffer.concat(this.transcript),
      );
      flight.push(this.own(HandshakeType.CERTIFICATE_VERIFY, writeCertificateVerify(signature)));
    }
    this.phase = "finished-wait";
    this.sendFlight(now, flight, this.finishedData("client finished"), true);
  }
}
