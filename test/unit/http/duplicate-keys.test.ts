/** duplicateKey: a name twice in one JSON object, against a reference that counts names as JSON.parse sees them. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { duplicateKey } from '../../../src/http/duplicate-keys.js';
import { oauthDescription } from '../../../src/http/errors.js';

describe('duplicateKey', () => {
  it('finds a name twice in one object, at any depth, escaped or not', () => {
    expect(duplicateKey('{"task_id":"a","task_id":"b"}')).toBe('task_id');
    expect(duplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
    expect(duplicateKey('{"x":{"a":1,"b":[{"c":1,"c":2}]}}')).toBe('c');
    expect(duplicateKey('{ "a" : 1 , "b" : 2 , "a" : 3 }')).toBe('a');
  });

  it('lets the same name appear in different objects, and names inside strings or arrays', () => {
    expect(duplicateKey('{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}')).toBeUndefined();
    expect(duplicateKey('{"a":"\\"a\\":1,","b":["a","a"],"c":"{\\"a\\":1,\\"a\\":2}"}')).toBeUndefined();
    expect(duplicateKey('{"a\\\\":1,"a":2}')).toBeUndefined();
    expect(duplicateKey('[1,2,{"k":1}]')).toBeUndefined();
  });

  it('agrees with a reference on generated JSON (fast-check)', () => {
    // objects as entry lists, so a generated object may hold a name twice
    class Obj {
      constructor(readonly entries: [string, unknown][]) {}
    }
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 0 }), fc.array(tie('value'), { maxLength: 4 }), tie('object')),
      object: fc.array(fc.tuple(fc.constantFrom('a', 'b', 'ä', '"', '\\', 'x y'), tie('value')), { maxLength: 4 }).map((e) => new Obj(e)),
    }));
    const render = (v: unknown): string =>
      v instanceof Obj
        ? `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${render(x)}`).join(',')}}`
        : Array.isArray(v)
          ? `[${v.map(render).join(',')}]`
          : JSON.stringify(v);
    const hasTwice = (v: unknown): boolean =>
      v instanceof Obj
        ? new Set(v.entries.map(([k]) => k)).size < v.entries.length || v.entries.some(([, x]) => hasTwice(x))
        : Array.isArray(v) && v.some(hasTwice);
    fc.assert(
      fc.property(value, (v) => {
        const text = render(v);
        JSON.parse(text); // valid JSON, as the caller guarantees
        expect(duplicateKey(text) !== undefined).toBe(hasTwice(v));
      }),
      { numRuns: 500 },
    );
  });
});

describe('oauthDescription (RFC 6749 §5.2 characters)', () => {
  it('keeps allowed text and replaces the rest', () => {
    expect(oauthDescription('unknown field(s) x, y')).toBe('unknown field(s) x, y');
    expect(oauthDescription('parameter "scope" \\ é\n')).toBe("parameter 'scope' / ??");
  });
});
