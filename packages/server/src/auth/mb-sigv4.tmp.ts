import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { verifySignature, type SignedRequest } from './sigv4.js';
const credentials = { accessKeyId: 'ASIATESTTESTTESTTEST', secretAccessKey: 'secret/with+odd=chars', sessionToken: 'CS1session-token-'.padEnd(400, 'x') };
const principal = { kind: 'developer', accessKeyId: credentials.accessKeyId } as any;
const cred = { secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken, principal };
const lookup = async (id: string) => (id === credentials.accessKeyId ? cred : undefined);
const NOW = new Date();
const signer = new SignatureV4({ service: 'cognito-sync', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials, applyChecksum: true });
const path = '/identitypools/us-east-1%3A00000000-0000-0000-0000-000000000000/identities/us-east-1%3A11111111-1111-1111-1111-111111111111/datasets/bench/records';
const query = { lastSyncCount: '99', maxResults: '1024' };
const r = await signer.sign(new HttpRequest({ method: 'GET', hostname: '127.0.0.1', port: 8080, path, query, headers: { host: '127.0.0.1:8080', 'x-amz-user-agent': 'aws-sdk-js/3.0 ua/2.1 os/linux lang/js md/nodejs#20', 'user-agent': 'aws-sdk-js/3', 'amz-sdk-invocation-id': 'abc', 'amz-sdk-request': 'attempt=1; max=3' } }), { signingDate: NOW });
const headers: Record<string, string> = {};
for (const [n, v] of Object.entries(r.headers)) headers[n.toLowerCase()] = v as string;
const req: SignedRequest = { method: 'GET', rawPath: path, query: Object.entries(query), headers, body: Buffer.alloc(0) };
console.log(headers['authorization']);
for (let round = 0; round < 5; round++) {
  const N = 100000;
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await verifySignature(req, 'cognito-sync', lookup, NOW, 900);
  console.log('verify µs', Number(process.hrtime.bigint() - t) / N / 1000);
}
