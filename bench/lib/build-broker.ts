/**
 * The broker runs in production as tsc output (`node dist/cli/main.js`, deploy/Dockerfile), not through
 * tsx (whose transform adds per-closure `__name` calls). So the bench compiles src/ with
 * tsconfig.build.json into a private, git-ignored directory inside the repository (so node_modules
 * resolves) and removes it afterwards; it never touches dist/. Like `npm run build`, it (re)builds
 * src/native when needed and copies it beside the output (scripts/build-native.mjs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';

export interface BrokerBuild {
  /** Path of the compiled CLI entry, relative to the repository root. */
  entry: string;
  /** tsc reported type errors (the output was still emitted and is used). */
  typeErrors: boolean;
}

/**
 * `srcRoot`: where tsconfig.build.json and src/ are read from (default `root`; the A/B bench passes a
 * git worktree of another revision). The output always lands under `root`, whose node_modules it uses.
 */
export function compileBroker(root: string, cleanup: Cleanup, srcRoot = root, name = `.broker-build-${process.pid}`): BrokerBuild {
  const rel = join('bench', 'results', name);
  const out = join(root, rel);
  cleanup.defer('compiled broker', () => rmSync(out, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(srcRoot, 'tsconfig.build.json'), '--outDir', out], {
    cwd: srcRoot,
    encoding: 'utf8',
    timeout: 120_000,
  });
  spawnSync(process.execPath, [join(srcRoot, 'scripts', 'build-native.mjs'), '--copy-to', join(out, 'native')], { cwd: srcRoot, stdio: 'inherit', timeout: 180_000 });
  const entry = join(rel, 'cli', 'main.js');
  if (!existsSync(join(root, entry))) throw new Error(`compiling src/ failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}${r.stderr}`);
  return { entry, typeErrors: r.status !== 0 };
}
