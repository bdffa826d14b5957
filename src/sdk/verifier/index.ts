/** The resource-server side of Mayfly: verify access tokens offline, with revocations from the feed. */
export { createVerifier, type Verifier, type VerifierOptions, type VerifyOptions, type VerifierStatus } from './verifier.js';
export type { MayflyClaims, VerifyCode, VerifyResult, VerifyFailure, RevokedReason } from './result.js';
export { verifyRequest, type HeaderSource, type RequestOptions, type RequestResult, type RequestCode } from './request.js';
export { mayflyAuth, type MayflyAuthOptions, type MayflyEnv } from './hono.js';
export { checkClientCertificate, parseCertificates, uriSans, type CertificateCheckOptions, type CertificateResult, type CertificateCode, type CertificateInput } from './mtls.js';
export { RevocationMirror, type RevocationEvent } from './mirror.js';
export type { DpopRequest } from './dpop.js';
export type { FeedMode, FeedStatus } from './feed.js';
export type { UsageOptions, UsageEvent } from './usage.js';
