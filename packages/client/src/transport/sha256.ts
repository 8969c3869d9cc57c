// SHA-256 and HMAC-SHA-256 for SigV4 signing: node:crypto's native ones where the runtime has them, else @aws-crypto/sha256-js.
//
// Why not always the pure-JS hash: until V8 has optimized it (hundreds of calls) a signature costs 0.5–6 ms with it,
// against ~0.05 ms once optimized, and an app that synchronizes now and then never gets there. With node:crypto a
// signature costs ~0.2 ms cold and ~0.03 ms warm. The AWS SDK v3 does the same in Node (@smithy/hash-node). Browsers
// keep the pure-JS hash: WebCrypto is asynchronous per digest (in Node it costs ~0.5 ms a signature, warm).
import { Sha256 as JsSha256 } from '@aws-crypto/sha256-js';
import { nodeBuiltin } from './node-builtin.ts';

/** What @smithy/signature-v4 hands a hash: strings (as UTF-8) and bytes. */
export type SourceData = string | ArrayBuffer | ArrayBufferView;

type NodeCrypto = typeof import('node:crypto');

/** A hash (or, given a secret, an HMAC) with the interface of @aws-crypto/sha256-js, computed by node:crypto. */
function nodeSha256(crypto: NodeCrypto) {
  const bytes = (data: SourceData): string | Uint8Array =>
    typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
  return class NodeSha256 {
    private hash: ReturnType<NodeCrypto['createHash']> | ReturnType<NodeCrypto['createHmac']>;

    constructor(private readonly secret?: SourceData) {
      this.hash = this.create();
    }

    update(data: SourceData): void {
      this.hash.update(bytes(data));
    }

    async digest(): Promise<Uint8Array> {
      return this.hash.digest();
    }

    reset(): void {
      this.hash = this.create();
    }

    private create() {
      return this.secret === undefined ? crypto.createHash('sha256') : crypto.createHmac('sha256', bytes(this.secret));
    }
  };
}

const crypto = nodeBuiltin<NodeCrypto>('node:crypto');

/** The hash SigV4 signing uses in this runtime. */
export const Sha256: new (secret?: SourceData) => { update(data: SourceData): void; digest(): Promise<Uint8Array>; reset(): void } = crypto
  ? nodeSha256(crypto)
  : JsSha256;

/** Which implementation `Sha256` is: 'node:crypto' or '@aws-crypto/sha256-js'. */
export const sha256Implementation: 'node:crypto' | '@aws-crypto/sha256-js' = crypto ? 'node:crypto' : '@aws-crypto/sha256-js';
