#!/usr/bin/env node
// Starts cognisync: the bundle `prepare` built (dist/cli.mjs) when it is up to date, else the TypeScript sources via tsx.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// A SIGTERM or SIGINT before the CLI has loaded (its own handlers come with it, ~0.5 s on the sources) would kill the
// process with status 143: it is held here, and the CLI takes it over (cli.ts, heldSignals).
const held = [];
const hold = (signal) => held.push(signal);
process.on('SIGTERM', hold);
process.on('SIGINT', hold);
globalThis[Symbol.for('cognisync.heldSignals')] = () => {
  process.off('SIGTERM', hold);
  process.off('SIGINT', hold);
  return held;
};

const dist = fileURLToPath(new URL('../dist/cli.mjs', import.meta.url));
const src = fileURLToPath(new URL('../src', import.meta.url));

// Plain JS spares every server process the tsx loader (its hooks thread and on-the-fly transforms): about 30 MB of
// RSS (docs/decisions.md, Runtime). But a developer who edited src and did not rebuild must run their edits, so the
// bundle is used only when it is no older than every file and folder under src (folders: a deleted file counts).
// The stat walk (~120 entries) costs 4-10 ms at startup, against the ~0.7 s the bundle saves.
function bundleIsFresh() {
  try {
    const built = statSync(dist).mtimeMs;
    // A hand-written walk: node 20's readdirSync({ recursive: true }) alone takes longer than this whole walk.
    const newerThanBundle = (path) =>
      statSync(path).mtimeMs > built ||
      readdirSync(path, { withFileTypes: true }).some((entry) =>
        entry.isDirectory() ? newerThanBundle(join(path, entry.name)) : statSync(join(path, entry.name)).mtimeMs > built,
      );
    return !newerThanBundle(src);
  } catch {
    // No bundle (installed with --ignore-scripts, or not installed yet), or src changing under the walk (an
    // editor's temp file gone between readdir and stat): the sources are the safe answer.
    return false;
  }
}

if (bundleIsFresh()) {
  await import('../dist/cli.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
