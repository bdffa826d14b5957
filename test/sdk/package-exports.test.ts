/** The SDK by package name (package.json `exports`): `mayfly`, `mayfly/verifier`, `mayfly/client` are the modules under src/sdk. */
import { describe, expect, it } from 'vitest';
import * as byName from 'mayfly';
import * as verifierByName from 'mayfly/verifier';
import * as clientByName from 'mayfly/client';
import * as sdk from '../../src/sdk/index.js';
import * as verifier from '../../src/sdk/verifier/index.js';
import * as client from '../../src/sdk/client/index.js';

describe('package exports', () => {
  it('mayfly/verifier, mayfly/client and mayfly are the SDK modules themselves', () => {
    expect(verifierByName.createVerifier).toBe(verifier.createVerifier);
    expect(verifierByName.mayflyAuth).toBe(verifier.mayflyAuth);
    expect(clientByName.createClient).toBe(client.createClient);
    expect(Object.keys(byName).sort()).toEqual(Object.keys(sdk).sort());
    expect(byName.createVerifier).toBe(sdk.createVerifier);
  });
});
