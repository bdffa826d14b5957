/**
 * Comparison server: node-oidc-provider 9 issuing ES256 JWT access tokens with the client_credentials
 * grant (resource indicator https://api.example by default), default in-memory adapter, one client
 * authenticating with client_secret_basic. Its own process, logs silenced:
 *   node --import tsx bench/servers/oidc-provider.ts <port>
 */
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { OIDC_CLIENT, OIDC_RESOURCE } from './oidc-client.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: oidc-provider.ts <port>');

// The provider prints notices (dev keys, cookie keys...) through console; the bench wants none.
console.info = () => undefined;
console.warn = () => undefined;

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: { keys: [jwk] },
  clients: [
    {
      client_id: OIDC_CLIENT.id,
      client_secret: OIDC_CLIENT.secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      id_token_signed_response_alg: 'ES256',
    },
  ],
  cookies: { keys: ['bench-cookie-key-not-secret'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => OIDC_RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: 'read',
        audience: OIDC_RESOURCE,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
provider.on('server_error', () => undefined);

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1');
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
