// Builds dist/ (JS + .d.ts via tsc) and, around `npm pack`/`npm publish`, points package.json's exports at it.
// In the workspace the exports name the TypeScript sources (tsx runs them; no build step for development).
//   node scripts/build.mjs            build dist/
//   node scripts/build.mjs --pack     build, then rewrite package.json for the tarball (prepack)
//   node scripts/build.mjs --restore  put the workspace package.json back (postpack)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const manifest = `${root}package.json`;
const backup = `${root}package.json.workspace`;

if (process.argv.includes('--restore')) {
  if (existsSync(backup)) renameSync(backup, manifest);
  process.exit(0);
}

rmSync(`${root}dist`, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });

if (process.argv.includes('--pack')) {
  copyFileSync(manifest, backup);
  const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
  const entry = (name) => ({ types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` });
  pkg.exports = {
    '.': { node: entry('node'), ...entry('index') },
    './memory': entry('stores/memory/memory-store'),
    './sqlite': entry('stores/sqlite/sqlite-store'),
    './indexeddb': entry('stores/indexeddb/indexeddb-store'),
    './package.json': './package.json',
  };
  pkg.types = './dist/index.d.ts';
  pkg.files = ['dist', 'README.md'];
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
}
