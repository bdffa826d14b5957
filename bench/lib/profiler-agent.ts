/**
 * Preloaded into a server process (`--import tsx --import ./bench/lib/profiler-agent.ts`) to CPU-profile
 * just a load window, not start-up: the first SIGUSR2 starts the V8 sampling profiler, the second stops
 * it and writes the .cpuprofile to $BENCH_CPU_PROFILE (atomically, via a temp file and rename).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

const target = process.env.BENCH_CPU_PROFILE;
if (target) {
  const session = new Session();
  session.connect();
  let running = false;
  let busy = false;
  process.on('SIGUSR2', () => {
    if (busy) return;
    busy = true;
    void (async () => {
      try {
        if (!running) {
          await session.post('Profiler.enable');
          await session.post('Profiler.setSamplingInterval', { interval: Number(process.env.BENCH_CPU_PROFILE_INTERVAL_US ?? 250) });
          await session.post('Profiler.start');
          running = true;
        } else {
          const { profile } = await session.post('Profiler.stop');
          running = false;
          writeFileSync(`${target}.tmp`, JSON.stringify(profile));
          renameSync(`${target}.tmp`, target);
        }
      } catch (e) {
        process.stderr.write(`[profiler-agent] ${(e as Error).message}\n`);
      } finally {
        busy = false;
      }
    })();
  });
}
