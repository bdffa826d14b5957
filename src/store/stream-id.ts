/** Stream ids (`<ms>-<seq>`, as Redis streams number entries): parsing and ordering. */
export function parseId(id: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  if (!m) throw new TypeError(`invalid event id: ${id}`);
  return [Number(m[1]), Number(m[2] ?? '0')];
}

export function compareIds(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}
