/** A CLI subcommand: its name and line in `mayfly help`, and its module, loaded only when it runs. */
import type { Io } from './common.js';

export type Run = (args: string[], io: Io) => Promise<number>;

export interface Command {
  name: string;
  /** How it is called, in short. */
  synopsis: string;
  summary: string;
  load(): Promise<{ run: Run }>;
}
