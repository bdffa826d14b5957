/**
 * What a task allows never changes after it opens (agents, ceilings, principal, deadline), so issuance
 * reads it from this per-process cache instead of the store. Its *state* is never trusted from here:
 * the store's check-and-record script decides open/closed atomically at every issuance.
 */
import type { Store, TaskRecord } from '../store/store.js';

export class TaskCache {
  private entries = new Map<string, TaskRecord>();
  constructor(private readonly maxEntries = 10_000) {}

  async get(store: Store, id: string): Promise<TaskRecord | null> {
    const hit = this.entries.get(id);
    if (hit) return hit;
    const task = await store.getTask(id);
    if (task && task.state === 'open') {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(id, task);
    }
    return task;
  }
}
