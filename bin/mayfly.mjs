#!/usr/bin/env node
// Runs the compiled CLI (npm run build) when present and not older than the sources beside it, else the
// TypeScript sources through tsx: a checkout edited after a build never runs yesterday's dist/.
import { existsSync, readdirSync, statSync } from 'node:fs';

const dist = new URL('../dist/cli/main.js', import.meta.url);
const src = new URL('../src/', import.meta.url);

/** Newest modification time of the .ts files under `dir` (0 when there are none). */
function newestTs(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = new URL(e.name + (e.isDirectory() ? '/' : ''), dir);
    if (e.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

const useDist = existsSync(dist) && (!existsSync(src) || statSync(dist).mtimeMs >= newestTs(src));
if (useDist) {
  await import(dist.href);
} else {
  if (existsSync(dist)) process.stderr.write('mayfly: dist/ is older than src/ (run `npm run build`); running src/ through tsx\n');
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
