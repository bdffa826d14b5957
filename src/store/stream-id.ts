/** Stream ids (`<ms>-<seq>`, as Redis streams number entries): parsing and ordering. */
export function parseId(id: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  if (!m) throw new TypeError(`invalid event id: ${id}`);
  return [Number(m[1]), Number(m[2] ?? '0')];
}

export function compareIds(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

const U64_MAX = 18446744073709551615n;

/** A stream id a client may send: `<ms>-<seq>`, each part within 64 bits (Redis refuses larger ones). */
export function isValidStreamId(id: string): boolean {
  const m = /^(\d{1,20})-(\d{1,20})$/.exec(id);
  return m !== null && BigInt(m[1]!) <= U64_MAX && BigInt(m[2]!) < U64_MAX;
}
