/**
 * The `mayfly` command. `serve` runs on a config file (MAYFLY_CONFIG, default config/mayfly.yaml);
 * `dev` runs the embedded default (memory store, dev attestor, loopback only) and prints a walkthrough.
 * The client-side commands (task, token, cert, introspect, revoke, inspect, keys, join-token) live in
 * cli/commands/, one file each; exit codes: 0 ok, 1 refused or inactive, 2 usage or configuration.
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config/config.js';
import { commandByName, commands } from './commands/index.js';
import { processIo, Refused, UsageError } from './commands/common.js';

const USAGE = `usage: mayfly <command> [options]

commands:
  serve [--config FILE]   run the broker on a config file (default: $MAYFLY_CONFIG or config/mayfly.yaml)
  dev [--port N]          run the embedded dev default (memory store, dev attestor, loopback only)
${commands.map((c) => (c.synopsis.length > 22 ? `  ${c.synopsis}\n  ${''.padEnd(22)}  ${c.summary}` : `  ${c.synopsis.padEnd(22)}  ${c.summary}`)).join('\n')}
  help                    show this help

\`mayfly <command> --help\` describes a command. Client commands talk to --url (default $MAYFLY_URL or
http://127.0.0.1:8080); exit codes: 0 ok, 1 refused or inactive, 2 usage or configuration error.
`;

async function run(config: Config, banner?: (url: string) => string): Promise<number> {
  // the broker's modules load only for serve/dev, so client commands start fast
  const [{ startBroker }, { default: cluster }, { announceListening, supervise }] = await Promise.all([
    import('../server.js'),
    import('node:cluster'),
    import('../workers.js'),
  ]);
  if (config.workers > 1 && cluster.isPrimary) {
    const { createLogger } = await import('../audit/logger.js');
    return supervise(config, createLogger(config.log.level));
  }
  const running = await startBroker(config);
  const log = running.broker.log;
  log.info(
    { url: running.url, store: config.store.kind, config: config.source, kid: running.broker.keyring.signing.kid, ...(cluster.isWorker ? { worker: process.pid } : {}) },
    'mayfly listening',
  );
  announceListening(running.url);
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
  return -1;
}

const SERVE_HELP = `mayfly serve [--config FILE]

Starts the broker on a config file (YAML or JSON; see config/mayfly.example.yaml): --config, else
$MAYFLY_CONFIG, else config/mayfly.yaml.
`;
const DEV_HELP = `mayfly dev [--port N]

Starts the broker on its embedded dev default (in-memory store, dev attestor, generated signing keys
and CA, loopback only) on --port (default $MAYFLY_PORT or 8080), and prints a walkthrough of a real flow.
`;

/** A server command's own options (and --help); a bad option is a usage error, not a crash. */
function serverArgs(rest: string[], options: Record<string, { type: 'string'; short: string }>, help: string): Record<string, string | boolean | undefined> | null {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: rest, options: { ...options, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(help);
    return null;
  }
  return values as Record<string, string | boolean | undefined>;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve': {
        const values = serverArgs(rest, { config: { type: 'string', short: 'c' } }, SERVE_HELP);
        if (!values) return 0;
        const { configPath, loadConfigFile, ConfigError: CfgError } = await import('../config/load.js');
        const file = typeof values.config === 'string' ? values.config : configPath();
        const { existsSync } = await import('node:fs');
        if (!existsSync(file))
          throw new CfgError(`no config file at ${file}: copy config/mayfly.example.yaml there, point MAYFLY_CONFIG (or --config) at yours, or run \`npm run dev\` for the embedded dev default`);
        return await run(loadConfigFile(file));
      }
      case 'dev': {
        const values = serverArgs(rest, { port: { type: 'string', short: 'p' } }, DEV_HELP);
        if (!values) return 0;
        const portRaw = String(values.port ?? process.env.MAYFLY_PORT ?? 8080);
        const port = /^\d{1,5}$/.test(portRaw) ? Number(portRaw) : NaN;
        const [{ ConfigError }, { devConfig }, { walkthrough }] = await Promise.all([import('../config/load.js'), import('../config/dev-default.js'), import('./walkthrough.js')]);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: not a port number: ${portRaw}`);
        const cfg = devConfig(port);
        return await run(cfg, (url) => walkthrough(cfg, url));
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default: {
        const command = commandByName(cmd);
        if (command) return await (await command.load()).run(rest, processIo);
        process.stderr.write(`mayfly: unknown command "${cmd}"\n${USAGE}`);
        return 2;
      }
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`mayfly ${cmd}: ${e.message}\n(see mayfly ${cmd} --help)\n`);
      return 2;
    }
    if (e instanceof Refused) {
      process.stderr.write(`mayfly ${cmd}: refused: ${e.message}\n`);
      return 1;
    }
    // the broker took the connection and did not answer in time (commands/common.ts timedFetch)
    if ((e as Error)?.name === 'TimeoutError') {
      process.stderr.write(`mayfly ${cmd}: ${(e as Error).message}\n`);
      return 2;
    }
    if ((e as Error)?.name === 'ConfigError') {
      process.stderr.write(`mayfly: ${(e as Error).message}\n`);
      return 2;
    }
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`mayfly: address already in use (${(e as Error).message}); pick another port\n`);
      return 2;
    }
    // listen.host names no address of this machine (a typo, another host's address)
    if (['ENOTFOUND', 'EADDRNOTAVAIL', 'EAI_AGAIN'].includes((e as NodeJS.ErrnoException).code ?? '')) {
      process.stderr.write(`mayfly: listen.host: cannot listen there (${(e as Error).message})\n`);
      return 2;
    }
    process.stderr.write(`mayfly: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
