/**
 * One place that undoes everything the bench started (child processes, temp dirs, connections), in
 * reverse order, exactly once: at the end, on an error, or on Ctrl-C / SIGTERM.
 */
export class Cleanup {
  private steps: { name: string; fn: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;

  /** Registers an undo step; it runs before the steps registered earlier. */
  defer(name: string, fn: () => Promise<void> | void): void {
    this.steps.push({ name, fn });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        try {
          await step.fn();
        } catch (e) {
          process.stderr.write(`[bench] cleanup "${step.name}" failed: ${(e as Error).message}\n`);
        }
      }
      this.steps = [];
    })();
    return this.running;
  }

  /** Runs the cleanup on SIGINT/SIGTERM, then exits with 128 + signal number. */
  onSignals(): void {
    const handler = (sig: NodeJS.Signals, code: number) => {
      process.stderr.write(`\n[bench] ${sig}: cleaning up\n`);
      void this.run().finally(() => process.exit(128 + code));
    };
    process.once('SIGINT', () => handler('SIGINT', 2));
    process.once('SIGTERM', () => handler('SIGTERM', 15));
  }
}
