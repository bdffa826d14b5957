#!/usr/bin/env node
// Makes a real Redis available to the tests (the project never mocks Redis).
// Order: REDIS_URL set -> nothing to do; redis-server on PATH -> nothing to do; root (or passwordless
// sudo) with apt-get -> install redis-server; otherwise leave it to test/setup/redis.global.ts, which
// tries testcontainers and fails loudly if no Redis can be had. Always exits 0.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const log = (msg) => console.error(`[ensure-redis] ${msg}`);

function onPath(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Runs a command with output streamed to the terminal; true on exit status 0. */
function run(argv) {
  log(`$ ${argv.join(' ')}`);
  const r = spawnSync(argv[0], argv.slice(1), {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.error) log(`could not run ${argv[0]}: ${r.error.message}`);
  return r.status === 0;
}

function main() {
  if (process.env.REDIS_URL) {
    log(`REDIS_URL is set; tests use ${process.env.REDIS_URL.replace(/\/\/[^@]*@/, '//***@')}`);
    return;
  }
  if (onPath('redis-server')) return;

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = !isRoot && onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if ((isRoot || sudo) && onPath('apt-get')) {
    const pre = isRoot ? [] : ['sudo', '-n', 'env', 'DEBIAN_FRONTEND=noninteractive'];
    const install = [...pre, 'apt-get', 'install', '-y', '--no-install-recommends', 'redis-server'];
    // Try without refreshing the package lists first (fast when they are fresh), then update and retry.
    const ok = run(install) || (run([...pre, 'apt-get', 'update']) && run(install));
    if (ok && onPath('redis-server')) {
      log('redis-server installed');
      return;
    }
    log('installing redis-server with apt-get failed');
  } else {
    log('redis-server is not on PATH and cannot be installed here (needs root or sudo, and apt-get)');
  }
  log('the test setup will try a Docker container via testcontainers; or set REDIS_URL=redis://host:port');
}

try {
  main();
} catch (err) {
  log(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
}
process.exit(0);
