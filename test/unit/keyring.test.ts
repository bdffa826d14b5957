/** Signing keys: generated once (0600, atomically), reused across restarts, newest signs, all published. */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Keyring } from '../../src/keys/keyring.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mayfly-kr-'));

describe('keyring', () => {
  it('creates one key with 0600 permissions in a missing directory, and reuses it on restart', async () => {
    const dir = join(tmp(), 'nested', 'keys');
    const a = await Keyring.open(dir, 'ES256');
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    const b = await Keyring.open(dir, 'ES256');
    expect(b.signing.kid).toBe(a.signing.kid);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('two replicas opening the same empty directory at once sign with the same key', async () => {
    const dir = tmp();
    const [a, b] = await Promise.all([Keyring.open(dir, 'ES256'), Keyring.open(dir, 'ES256')]);
    expect(a.signing.kid).toBe(b.signing.kid);
  });

  it('the newest key signs and every key stays in the JWKS', async () => {
    const dir = tmp();
    const old = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' });
    const neu = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' });
    writeFileSync(join(dir, 'a-old.pem'), old);
    writeFileSync(join(dir, 'b-new.pem'), neu);
    utimesSync(join(dir, 'a-old.pem'), new Date(1_000_000), new Date(1_000_000));
    const k = await Keyring.open(dir, 'ES256');
    expect(k.signing.file.endsWith('b-new.pem')).toBe(true);
    expect(k.jwks().keys).toHaveLength(2);
    for (const jwk of k.jwks().keys) {
      expect(jwk.d).toBeUndefined(); // never publish private parts
      expect(jwk.use).toBe('sig');
      expect(jwk.kid).toMatch(/^[A-Za-z0-9_-]{43}$/); // RFC 7638 SHA-256 thumbprint
    }
  });

  it('with publish_ahead, a new key is published at once and signs only once its file is that old', async () => {
    const dir = tmp();
    const write = (name: string, at: number) => {
      writeFileSync(join(dir, name), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
      utimesSync(join(dir, name), new Date(at), new Date(at));
    };
    const t0 = 1_700_000_000_000;
    let now = t0;
    write('a-old.pem', t0 - 3_600_000);
    const k = await Keyring.open(dir, 'ES256', { publishAheadMs: 600_000, now: () => now });
    const old = k.signing.kid;
    write('b-new.pem', t0);
    await k.reload();
    expect(k.jwks().keys.map((j) => j.kid)).toContain(k.pending()[0]!.key.kid); // published
    expect(k.signing.kid).toBe(old); // not signing yet
    expect(k.pending().map((p) => p.signsFrom)).toEqual([t0 + 600_000]);
    now = t0 + 599_999;
    expect(k.signing.kid).toBe(old);
    now = t0 + 600_000; // switches by itself, without a reload
    expect(k.signing.file.endsWith('b-new.pem')).toBe(true);
    expect(k.pending()).toEqual([]);
    // a directory whose only key is new signs with it: there is nothing older
    const fresh = tmp();
    const f = await Keyring.open(fresh, 'ES256', { publishAheadMs: 600_000, now: () => now });
    expect(f.signing.kid).toBe(f.jwks().keys[0]!.kid);
    // every key new (a rotation soon after the first start): the oldest signs until the newer is due
    write('c-newer.pem', t0 + 600_000 + 1000);
    await k.reload();
    now = t0 + 600_000 + 2000;
    expect(k.signing.file.endsWith('b-new.pem')).toBe(true);
    const dir2 = tmp();
    writeFileSync(join(dir2, 'x.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    utimesSync(join(dir2, 'x.pem'), new Date(now - 5000), new Date(now - 5000));
    writeFileSync(join(dir2, 'y.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    utimesSync(join(dir2, 'y.pem'), new Date(now - 1000), new Date(now - 1000));
    const both = await Keyring.open(dir2, 'ES256', { publishAheadMs: 600_000, now: () => now });
    expect(both.signing.file.endsWith('x.pem')).toBe(true);
    now += 600_000;
    expect(both.signing.file.endsWith('y.pem')).toBe(true);
  });

  it('generates a key of the configured algorithm when none present fits', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'ec.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const k = await Keyring.open(dir, 'EdDSA');
    expect(k.signing.alg).toBe('EdDSA');
    expect(k.jwks().keys).toHaveLength(2);
  });

  it('refuses weak or unreadable keys by file name', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'weak.pem'), generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await expect(Keyring.open(dir, 'ES256')).rejects.toThrow(/weak\.pem: unsupported key type/);
    const dir2 = tmp();
    writeFileSync(join(dir2, 'junk.pem'), 'not a key');
    await expect(Keyring.open(dir2, 'ES256')).rejects.toThrow(/junk\.pem: not a PEM private key/);
  });
});
