/**
 * The server side of a DTLS 1.2 handshake as a sans-IO state machine (RFC 6347, RFC 5246,
 * RFC 7627, RFC 5764) for TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 on P-256: an optional
 * stateless HelloVerifyRequest cookie, then ServerHello, Certificate, ServerKeyExchange,
 * CertificateRequest and ServerHelloDone; the client's Certificate (checked against the SDP
 * fingerprint), ClientKeyExchange, CertificateVerify, ChangeCipherSpec and Finished; then the
 * server's ChangeCipherSpec and Finished. Records, flights, retransmission and the exporter are
 * `DtlsEndpoint`'s.
 */
import { publicKeyOf } from "./certificate.ts";
import { EcdhP256, signEcdsaSha256, verifyEcdsaSha256 } from "./crypto.ts";
import { Alert, DtlsEndpoint, type DtlsEndpointOptions } from "./endpoint.ts";
import {
  CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256,
  chooseForClientHello,
  HandshakeType,
  parseClientHello,
  writeHelloVerifyRequest,
  writeServerHello,
} from "./hello.ts";
import {
  ecdheParams,
  helloCookie,
  parseCertificateVerify,
  parseClientKeyExchange,
  serverKeyExchangeSigned,
  writeCertificate,
  writeCertificateRequest,
  writeServerKeyExchange,
} from "./messages.ts";
import { type HandshakeMessage, HandshakeReassembler } from "./record.ts";

/** What the server needs. */
export interface DtlsServerOptions extends DtlsEndpointOptions {
  /** With a secret, a ClientHello without a valid cookie is answered by HelloVerifyRequest. */
  readonly cookieSecret?: Uint8Array;
  /** The client's address as text, bound into the cookie. */
  readonly peer?: string;
}

/** The server's handshake phases: waiting for a ClientHello, then for the client's flight. */
export type DtlsServerPhase = "hello" | "flight4-wait";

/** See the module comment. */
export class DtlsServer extends DtlsEndpoint<DtlsServerPhase> {
  /** HelloVerifyRequests sent (ClientHellos without a valid cookie). */
  helloVerifyRequests = 0;
  readonly #cookieSecret: Uint8Array | undefined;
  readonly #peer: string;
  #ecdh: EcdhP256 | undefined;

  constructor(options: DtlsServerOptions) {
    super(options, false, "hello");
    this.#cookieSecret = options.cookieSecret;
    this.#peer = options.peer ?? "";
  }

  protected endsPeerFlight(msgType: number): boolean {
    return msgType === HandshakeType.CLIENT_HELLO || msgType === HandshakeType.FINISHED;
  }

  protected repeatsOnPeerRepeat(): boolean {
    return this.phase === "flight4-wait" || this.phase === "connected";
  }

  /** Before any state is kept, a repeated ClientHello (its HelloVerifyRequest was lost) is new. */
  protected override rewindTo(_messageSeq: number): boolean {
    return this.phase === "hello";
  }

  protected onMessage(now: number, m: HandshakeMessage): void {
    if (this.phase === "hello") {
      if (m.msgType === HandshakeType.CLIENT_HELLO) this.#clientHello(now, m);
      else this.fail("expected a ClientHello", Alert.UNEXPECTED_MESSAGE);
      return;
    }
    if (this.phase !== "flight4-wait") return;
    switch (m.msgType) {
      case HandshakeType.CERTIFICATE:
        this.takeRemoteCertificate(m);
        return;
      case HandshakeType.CLIENT_KEY_EXCHANGE: {
        const point = parseClientKeyExchange(m.body);
        const secret = point.ok ? this.#ecdh?.computeSecret(point.value) : undefined;
        if (secret === undefined) {
          this.fail("bad ClientKeyExchange", Alert.ILLEGAL_PARAMETER);
          return;
        }
        this.hash(m);
        this.installKeys(now, secret);
        return;
      }
      case HandshakeType.CERTIFICATE_VERIFY: {
        const cv = parseCertificateVerify(m.body);
        const cert = this.remoteCertificate;
        const key = cert === undefined ? undefined : publicKeyOf(cert);
        if (
          !cv.ok ||
          key === undefined ||
          !verifyEcdsaSha256(key, Buffer.concat(this.transcript), cv.value.signature)
        ) {
          this.fail("the client's CertificateVerify does not verify", Alert.DECRYPT_ERROR);
          return;
        }
        this.hash(m);
        return;
      }
      case HandshakeType.FINISHED: {
        if (!this.hasKeys || this.remoteCertificate === undefined) {
          this.fail(
            "Finished before the client's certificate and key exchange",
            Alert.UNEXPECTED_MESSAGE,
          );
          return;
        }
        if (!Buffer.from(this.finishedData("client finished")).equals(m.body)) {
          this.fail("the client's Finished does not match", Alert.DECRYPT_ERROR);
          return;
        }
        this.hash(m);
        // the last flight goes again only when the client repeats its Finished
        this.sendFlight(now, [], this.finishedData("server finished"), false);
        this.connected();
        return;
      }
      default:
        this.fail(`unexpected handshake message ${m.msgType}`, Alert.UNEXPECTED_MESSAGE);
    }
  }

  #clientHello(now: number, m: HandshakeMessage): void {
    const hello = parseClientHello(m.body);
    if (!hello.ok) {
      this.fail("bad ClientHello", Alert.HANDSHAKE_FAILURE);
      return;
    }
    const h = hello.value;
    if (this.#cookieSecret !== undefined) {
      const cookie = helloCookie(this.#cookieSecret, this.#peer, h.random);
      if (!Buffer.from(h.cookie).equals(cookie)) {
        // stateless: answer and forget; the next ClientHello has the next message_seq
        this.helloVerifyRequests++;
        this.sendStateless(
          HandshakeType.HELLO_VERIFY_REQUEST,
          m.messageSeq,
          writeHelloVerifyRequest(cookie),
        );
        this.reassembler = new HandshakeReassembler(m.messageSeq + 1);
        return;
      }
    }
    const choice = chooseForClientHello(h, this.options.srtpProfiles);
    if (!choice.ok) {
      this.fail(choice.why, Alert.HANDSHAKE_FAILURE);
      return;
    }
    this.srtpProfile = choice.srtpProfile;
    this.clientRandom = h.random.slice();
    this.serverRandom = this.random(32).slice();
    this.#ecdh = new EcdhP256();
    this.messageSeq = m.messageSeq;
    this.hash(m);
    const params = ecdheParams(this.#ecdh.publicKey);
    const signature = signEcdsaSha256(
      this.options.certificate.privateKey,
      serverKeyExchangeSigned(this.clientRandom, this.serverRandom, params),
    );
    const flight = [
      this.own(
        HandshakeType.SERVER_HELLO,
        writeServerHello(this.serverRandom, CIPHER_ECDHE_ECDSA_AES128_GCM_SHA256, this.srtpProfile),
      ),
      this.own(HandshakeType.CERTIFICATE, writeCertificate([this.options.certificate.der])),
      this.own(HandshakeType.SERVER_KEY_EXCHANGE, writeServerKeyExchange(params, signature)),
      this.own(HandshakeType.CERTIFICATE_REQUEST, writeCertificateRequest()),
      this.own(HandshakeType.SERVER_HELLO_DONE, new Uint8Array(0)),
    ];
    this.phase = "flight4-wait";
    this.sendFlight(now, flight, undefined, true);
  }
}
