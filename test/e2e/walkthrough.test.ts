/**
 * The README's first command: `mayfly dev` starts on the embedded default (no config, no Redis) and
 * prints a walkthrough. This runs the real CLI as a child process, pastes its walkthrough into bash,
 * and checks every step did what it says.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/broker.js';

describe('mayfly dev walkthrough', () => {
  let child: ChildProcess;
  let banner = '';
  beforeAll(async () => {
    const port = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'dev', '--port', String(port)], {
      env: { ...process.env, MAYFLY_KEYS_DIR: mkdtempSync(join(tmpdir(), 'mayfly-dev-keys-')), MAYFLY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`dev broker did not start: ${banner}`)), 30_000);
      child.stderr!.on('data', (d: Buffer) => {
        banner += d.toString();
        if (banner.includes('# 7.')) {
          clearTimeout(t);
          setTimeout(resolve, 200);
        }
      });
      child.once('exit', (code) => reject(new Error(`dev broker exited ${code}: ${banner}`)));
    });
  });
  afterAll(() => {
    child?.kill('SIGTERM');
  });

  it('prints a walkthrough that runs end to end against the dev broker', () => {
    expect(banner).toMatch(/DEV MODE/);
    const script = banner.slice(banner.indexOf('M=http'));
    const out = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 30_000 });
    expect(out.status, out.stderr).toBe(0);
    const lines = out.stdout.split('\n');
    expect(out.stdout).toMatch(/task: tsk_/);
    expect(out.stdout).toContain('"act": {');
    const introspections = lines.filter((l) => l.startsWith('{"active"'));
    expect(introspections).toHaveLength(2);
    expect(JSON.parse(introspections[0]!).active).toBe(true);
    expect(JSON.parse(introspections[1]!)).toEqual({ active: false });
    expect(out.stdout).toContain('"error":"invalid_scope"');
    expect(out.stdout).toMatch(/"state":"closed","revoked":2/);
    expect(out.stdout).toMatch(/token\.denied scope_escalation/);
    expect(out.stdout).toMatch(/task\.closed/);
    // the certificate: good, then revoked with the task
    const statuses = lines.filter((l) => l.startsWith('{"serial"')).map((l) => JSON.parse(l) as { status: string; reason?: string; spiffe_id: string });
    expect(statuses.map((s) => s.status)).toEqual(['good', 'revoked']);
    expect(statuses[1]!.reason).toBe('task_closed');
    expect(statuses[0]!.spiffe_id).toBe('spiffe://mayfly.local/agent/coder');
    expect(out.stdout).toMatch(/certificate\.granted/);
  });
});
