/**
 * Reading request bodies strictly at the boundary. OAuth endpoints take
 * application/x-www-form-urlencoded (RFC 6749 §3.2) and a parameter may appear once (RFC 6749 §3.1),
 * except the ones RFC 8693 lets repeat (audience, resource). JSON endpoints take one JSON object.
 * Sizes are capped by the body-limit middleware before this runs.
 */
import type { Context } from 'hono';
import { MayflyError } from '../errors.js';
import { duplicateKey } from './duplicate-keys.js';

const bad = (msg: string) => new MayflyError('invalid_request', msg, { reason: 'malformed_request' });

function mediaType(c: Context): string {
  return (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Whether the body is UTF-8 as far as Content-Type says: no charset parameter, or utf-8. */
function utf8Declared(c: Context): boolean {
  for (const p of (c.req.header('content-type') ?? '').split(';').slice(1)) {
    const [k, v] = p.split('=');
    if (k?.trim().toLowerCase() === 'charset' && !/^"?utf-8"?$/i.test(v?.trim() ?? '')) return false;
  }
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body's bytes as UTF-8 text; 400 when they are not. */
export function decodeUtf8(buf: ArrayBuffer | Uint8Array): string {
  try {
    return utf8.decode(buf);
  } catch {
    throw bad('request body is not valid UTF-8');
  }
}

async function text(c: Context): Promise<string> {
  return decodeUtf8(await c.req.arrayBuffer());
}

export type Form = Map<string, string[]>;

export async function readForm(c: Context, repeatable: readonly string[] = []): Promise<Form> {
  if (mediaType(c) !== 'application/x-www-form-urlencoded')
    throw bad('request body must be application/x-www-form-urlencoded');
  if (!utf8Declared(c)) throw bad('request body must be UTF-8');
  const params = new URLSearchParams(await text(c));
  const form: Form = new Map();
  for (const [k, v] of params) {
    const list = form.get(k);
    if (list) {
      if (!repeatable.includes(k)) throw bad(`parameter "${k}" must not be repeated`);
      list.push(v);
    } else form.set(k, [v]);
  }
  return form;
}

/** A single-valued form parameter; empty values count as absent (RFC 6749 §3.1). */
export function param(form: Form, name: string, maxLen = 8192): string | undefined {
  const v = form.get(name)?.[0];
  if (v === undefined || v === '') return undefined;
  if (v.length > maxLen) throw bad(`parameter "${name}" is too long`);
  return v;
}

/** The request's JSON object; with `only`, any other top-level field is refused by name. */
export async function readJson(c: Context, only?: readonly string[]): Promise<Record<string, unknown>> {
  const mt = mediaType(c);
  if (mt !== 'application/json' && !mt.endsWith('+json'))
    throw new MayflyError('unsupported_media_type', 'request body must be application/json', { reason: 'bad_media_type' });
  // JSON is UTF-8 (RFC 8259 §8.1): a body declared otherwise would be misread
  if (!utf8Declared(c)) throw new MayflyError('unsupported_media_type', 'request body must be UTF-8 JSON', { reason: 'bad_media_type' });
  return parseJsonObject(await text(c), only);
}

/** One JSON object, each member name once; with `only`, any other top-level field is refused by name. */
export function parseJsonObject(t: string, only?: readonly string[]): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    throw bad('request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('request body must be a JSON object');
  const twice = duplicateKey(t);
  if (twice !== undefined) throw bad(`request body names "${twice.slice(0, 64)}" twice in one object`);
  if (only) {
    const unknown = Object.keys(v).filter((k) => !only.includes(k));
    if (unknown.length) throw bad(`unknown field(s) ${unknown.join(', ')}`);
  }
  return v as Record<string, unknown>;
}
