/**
 * The broker's parts, wired once at start-up and handed to every route. Nothing here does I/O on its
 * own; tests build a Broker around a ManualClock and a real store.
 */
import type { Config } from './config/config.js';
import type { Store } from './store/store.js';
import type { Keyring } from './keys/keyring.js';
import type { Clock, IdSource } from './clock.js';
import type { Audit } from './audit/audit.js';
import type { Logger } from './audit/logger.js';
import type { Attestation } from './attest/attestation.js';
import type { AccessTokenVerifier } from './issue/access-token.js';
import type { FeedHub } from './feed/hub.js';
import type { TaskCache } from './tasks/cache.js';
import type { IssuerStates } from './issue/issuer-states.js';
import type { CertificateAuthority } from './x509/index.js';
import type { CrlService } from './ca/crl-service.js';
import type { X509Certificate } from 'node:crypto';
import type { CertificateAttestor } from './attest/client-certificate.js';
import type { DpopNonces } from './attest/dpop-nonce.js';

export interface Broker {
  config: Config;
  store: Store;
  keyring: Keyring;
  clock: Clock;
  ids: IdSource;
  audit: Audit;
  log: Logger;
  attestation: Attestation;
  accessTokens: AccessTokenVerifier;
  /** Immutable task specs for issuance (state is always re-checked by the store). */
  taskCache: TaskCache;
  /** Identity and principal states this process's last grants were decided on (asserted by the store). */
  issuerStates: IssuerStates;
  /** Wakes revocation-feed subscribers of this process when any replica publishes. */
  feed: FeedHub;
  /** The CA that signs X509-SVIDs, and its CRL. */
  ca: CertificateAuthority;
  crl: CrlService;
  /** The CA's certificate, as the anchor its own X509-SVIDs chain to when presented over mTLS. */
  caAnchors: X509Certificate[];
  /** DPoP nonces (RFC 9449 §8), when `dpop.require_nonce`. */
  dpopNonces?: DpopNonces;
  /** `type: x509` attestors (client certificates of other PKIs). */
  certificateAttestors: CertificateAttestor[];
  /** Present only in dev mode: mints attestation tokens for a named workload. */
  devMint?: (workload: string, ttlS?: number) => Promise<string>;
}
