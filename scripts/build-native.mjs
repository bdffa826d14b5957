#!/usr/bin/env node
/**
 * Builds src/native (the optional ECDSA check, see src/native/index.ts) with node-gyp against the
 * running Node's own headers and OpenSSL. Runs as `postinstall`, so `npm ci` builds it; it never fails
 * the install: without a compiler the broker uses node:crypto and says so at start.
 *
 *   node scripts/build-native.mjs                   build when missing or older than its sources
 *   node scripts/build-native.mjs --force           rebuild
 *   node scripts/build-native.mjs --copy-to DIR     also copy the binary under DIR (npm run build: dist/native)
 *   MAYFLY_NATIVE=0                                 skip
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, 'src', 'native');
const REL = join('build', 'Release', 'mayfly_native.node');
const BINARY = join(DIR, REL);
const SOURCES = ['ecdsa.c', 'crl.c', 'native.h', 'binding.gyp'].map((f) => join(DIR, f));
const say = (m) => process.stderr.write(`[build-native] ${m}\n`);

const args = process.argv.slice(2);
const force = args.includes('--force');
const copyIdx = args.indexOf('--copy-to');
const copyTo = copyIdx >= 0 ? args[copyIdx + 1] : undefined;

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp, // set by npm for lifecycle scripts: its bundled node-gyp
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

/** Node's headers next to the binary (Debian/NodeSource: /usr/include/node), so node-gyp needs no download. */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function upToDate() {
  if (!existsSync(BINARY)) return false;
  const built = statSync(BINARY).mtimeMs;
  return SOURCES.every((s) => statSync(s).mtimeMs <= built);
}

function build() {
  if (process.env.MAYFLY_NATIVE === '0') return say('skipped (MAYFLY_NATIVE=0): CSR signatures are checked with node:crypto');
  if (!SOURCES.every((s) => existsSync(s))) return say(`no sources in ${DIR}: nothing to build`);
  if (!force && upToDate()) return;
  const gyp = nodeGyp();
  if (!gyp) return say('node-gyp not found: CSR signatures will be checked with node:crypto (about 2x the CPU per new key)');
  const dir = nodeDir();
  const r = spawnSync(process.execPath, [gyp, 'rebuild', `--directory=${DIR}`, ...(dir ? [`--nodedir=${dir}`] : [])], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0 || !existsSync(BINARY)) {
    const why = `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim().split('\n').filter((l) => !l.startsWith('gyp info')).slice(-8).join('\n');
    return say(`build failed: CSR signatures will be checked with node:crypto (about 2x the CPU per new key)\n${why}`);
  }
  say(`built ${join('src', 'native', REL)}`);
}

build();
if (copyTo && existsSync(BINARY)) {
  const dest = join(resolve(ROOT, copyTo), REL);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(BINARY, dest);
}
