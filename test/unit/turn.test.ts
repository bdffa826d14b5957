/**
 * src/turn.ts: requests' work waits for the check phase, and what was batched is sent right after it,
 * in the same turn. Each case starts in a poll phase (an I/O callback), where requests arrive.
 */
import { readFile } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { atTurnEnd, workPhase } from '../../src/turn.js';

/** Runs `fn` in a poll phase (an I/O callback) and resolves with what `order` holds two turns later. */
function inPollPhase(fn: (order: string[]) => void): Promise<string[]> {
  const order: string[] = [];
  return new Promise((resolve) =>
    readFile(new URL(import.meta.url), () => {
      fn(order);
      setTimeout(() => setTimeout(() => resolve(order), 5), 5);
    }),
  );
}

describe('turn', () => {
  it("runs the work after the poll phase's own callbacks, and the end after the work's continuations, before the next turn", async () => {
    const order = await inPollPhase((order) => {
      for (const name of ['a', 'b'])
        void workPhase()
          .then(() => order.push(`work ${name}`))
          .then(() => atTurnEnd(() => order.push(`end after ${name}`)));
      order.push('poll');
      // set within the work: runs in the next turn's check phase
      void workPhase().then(() => setImmediate(() => order.push('next turn')));
    });
    expect(order).toEqual(['poll', 'work a', 'work b', 'end after a', 'end after b', 'next turn']);
  });

  it('an end asked for in the poll phase, before any work, runs; and so does one the work asks for after it, in the same turn', async () => {
    const order = await inPollPhase((order) => {
      atTurnEnd(() => order.push('end from poll'));
      void workPhase().then(() => {
        order.push('work');
        setImmediate(() => order.push('next turn'));
        atTurnEnd(() => order.push('end from work'));
      });
    });
    expect(order).toEqual(['end from poll', 'work', 'end from work', 'next turn']);
  });

  it('without work, an end runs at the end of the turn (a plain setImmediate), once', async () => {
    const order = await inPollPhase((order) => {
      atTurnEnd(() => order.push('end 1'));
      atTurnEnd(() => order.push('end 2'));
      setTimeout(() => order.push('timer'), 0);
    });
    expect(order).toEqual(['end 1', 'end 2', 'timer']);
  });
});
