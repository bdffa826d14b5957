/**
 * Reads a V8 .cpuprofile and ranks where the time went: self time per function (name, file:line) and
 * per module group (a package under node_modules, a src/ file, node internals, GC, idle).
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  where: string;
  /** Self time (topFunctions, byGroup) or inclusive time (mayflyInclusive). */
  ms: number;
  /** Share of the non-idle time. */
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  topFunctions: ProfileRow[];
  byGroup: ProfileRow[];
  /** Mayfly's own functions (src/) by inclusive time: the function and everything it called. */
  mayflyInclusive: ProfileRow[];
}

/** `src/<file>` for Mayfly's own code, whether run from src/ (tsx) or from the bench's compiled copy. */
function mayflyPath(url: string): string | null {
  if (url.includes('/node_modules/')) return null;
  const build = /\/\.broker-build-\d+\/(.*)$/.exec(url);
  if (build) return `src/${build[1]!.replace(/\.js$/, '.ts')}`;
  const src = url.indexOf('/src/');
  return src >= 0 ? url.slice(src + 1) : null;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const own = mayflyPath(url);
  if (own) return own;
  const bench = url.indexOf('/bench/');
  if (bench >= 0) return url.slice(bench + 1);
  return url.replace(/^file:\/\//, '');
}

const maps = new Map<string, SourceMap | null>();

/** The .ts line of a frame in the bench's compiled copy of src/, through tsc's source map. */
function originalLine(f: CallFrame): number | null {
  if (!/\/\.broker-build-\d+\//.test(f.url)) return null;
  let map = maps.get(f.url);
  if (map === undefined) {
    const file = `${f.url.startsWith('file:') ? fileURLToPath(f.url) : f.url}.map`;
    map = existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, 'utf8')) as SourceMapPayload) : null;
    maps.set(f.url, map);
  }
  const e = map?.findEntry(f.lineNumber, f.columnNumber);
  return e && 'originalLine' in e ? e.originalLine + 1 : null;
}

/** file:line (.ts lines for Mayfly's compiled code; tsx-run sources report line 1 for everything, so it is left out). */
function location(f: CallFrame): string {
  const line = originalLine(f) ?? (f.lineNumber > 0 ? f.lineNumber + 1 : null);
  return line ? `${shortUrl(f.url)}:${line}` : shortUrl(f.url);
}

function group(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8 builtins)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return mayflyPath(url) ?? shortUrl(url);
}

export function summariseProfile(path: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const grp = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    totalUs += us;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = f.url ? location(f) : '';
    const key = `${f.functionName}|${where}`;
    const row = fn.get(key) ?? { name: f.functionName || '(anonymous)', where, us: 0 };
    row.us += us;
    fn.set(key, row);
    const g = group(f);
    grp.set(g, (grp.get(g) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;

  // inclusive time: each sample counts once for every distinct src/ function on its stack
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, { name: string; where: string; us: number }>();
  for (let i = 0; i < p.samples.length; i++) {
    const seen = new Set<string>();
    for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (!mayflyPath(f.url)) continue;
      const where = location(f);
      const key = `${f.functionName}|${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const row = incl.get(key) ?? { name: f.functionName || '(anonymous)', where, us: 0 };
      row.us += p.timeDeltas[i] ?? 0;
      incl.set(key, row);
    }
  }
  const pct = (us: number) => (busyUs > 0 ? (100 * us) / busyUs : 0);
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    topFunctions: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((r) => ({ name: r.name, where: r.where, ms: r.us / 1000, pct: pct(r.us) })),
    byGroup: [...grp.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, where: '', ms: us / 1000, pct: pct(us) })),
    mayflyInclusive: [...incl.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((r) => ({ name: r.name, where: r.where, ms: r.us / 1000, pct: pct(r.us) })),
  };
}
