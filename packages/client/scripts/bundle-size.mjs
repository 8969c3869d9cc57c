// Prints the browser bundle size of @cognisync/client (signed fetch) beside the same job done with the AWS SDK v3
// clients, both minified ESM from esbuild in the same run. Usage: npm run bundle-size -w @cognisync/client
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

async function measure(name, contents) {
  const result = await build({
    stdin: { contents, resolveDir: root, sourcefile: `${name}.ts`, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    treeShaking: true,
    logLevel: 'error',
  });
  const code = result.outputFiles[0].contents;
  return { name, bytes: code.length, gzip: gzipSync(code, { level: 9 }).length };
}

const entries = [
  ['@cognisync/client (SyncManager + IndexedDbStore + MemoryStore, signed fetch)', `export * from './src/index.ts';`],
  ['  of which the transport (signed fetch: @smithy/signature-v4 + @aws-crypto/sha256-js)', `export { sendAwsRequest } from './src/transport/signed-fetch.ts';`],
  [
    'AWS SDK v3 alternative: CognitoSyncClient + CognitoIdentityClient with the 6 commands used',
    `export { CognitoSyncClient, ListRecordsCommand, UpdateRecordsCommand, DeleteDatasetCommand, ListDatasetsCommand } from '@aws-sdk/client-cognito-sync';
     export { CognitoIdentityClient, GetIdCommand, GetCredentialsForIdentityCommand } from '@aws-sdk/client-cognito-identity';`,
  ],
];

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const results = [];
for (const [name, contents] of entries) results.push(await measure(name, contents));
for (const r of results) console.log(`${r.name.padEnd(92)} ${kb(r.bytes).padStart(10)} min  ${kb(r.gzip).padStart(9)} gzip`);
const [ours, transport, sdk] = results;
console.log(`transport: signed fetch is ${kb(transport.gzip)} gzip vs ${kb(sdk.gzip)} for the SDK clients (${(sdk.gzip / transport.gzip).toFixed(1)}x)`);
console.log(`whole client with signed fetch: ${kb(ours.gzip)} gzip (esbuild ${(await import('esbuild')).version}, minified ESM, platform=browser)`);
