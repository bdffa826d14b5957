/**
 * The `mayfly` command. `serve` runs on a config file (MAYFLY_CONFIG, default config/mayfly.yaml);
 * `dev` runs the embedded default (memory store, dev attestor, loopback only) and prints a walkthrough.
 */
import { parseArgs } from 'node:util';
import { configPath, ConfigError, loadConfigFile } from '../config/load.js';
import { devConfig } from '../config/dev-default.js';
import type { Config } from '../config/config.js';
import { startBroker } from '../server.js';
import { walkthrough } from './walkthrough.js';

const USAGE = `usage: mayfly <command> [options]

commands:
  serve [--config FILE]   run the broker on a config file (default: $MAYFLY_CONFIG or config/mayfly.yaml)
  dev [--port N]          run the embedded dev default (memory store, dev attestor, loopback only)
  help                    show this help
`;

async function run(config: Config, banner?: (url: string) => string): Promise<void> {
  const running = await startBroker(config);
  const log = running.broker.log;
  log.info({ url: running.url, store: config.store.kind, config: config.source, kid: running.broker.keyring.signing.kid }, 'mayfly listening');
  if (banner) process.stderr.write(banner(running.url));
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ sig }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    setTimeout(() => process.exit(1), 5000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    running.broker.keyring.reload().then(
      () => log.info({ kid: running.broker.keyring.signing.kid }, 'signing keys reloaded'),
      (e: unknown) => log.error({ err: (e as Error).message }, 'key reload failed; keeping current keys'),
    );
  });
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve': {
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
        await run(loadConfigFile(values.config ?? configPath()));
        return -1;
      }
      case 'dev': {
        const { values } = parseArgs({ args: rest, options: { port: { type: 'string', short: 'p' } } });
        const port = Number(values.port ?? process.env.MAYFLY_PORT ?? 8080);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: not a port number: ${values.port}`);
        const cfg = devConfig(port);
        await run(cfg, (url) => walkthrough(cfg, url));
        return -1;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default:
        process.stderr.write(`mayfly: unknown command "${cmd}"\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`mayfly: ${e.message}\n`);
      return 2;
    }
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`mayfly: address already in use (${(e as Error).message}); pick another port\n`);
      return 2;
    }
    process.stderr.write(`mayfly: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
