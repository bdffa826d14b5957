/** The agent's and orchestrator's side of Mayfly: task-bound tokens and task management. */
export { createClient, type ClientOptions, type MayflyClient } from './client.js';
export { staticToken, fileToken, githubActions, devAttestor, type AttestationSource } from './attestation.js';
export type { TokenRequest, AccessToken, DelegationRequest } from './exchange.js';
export type { TaskSpec, TaskView, TaskClosed } from './tasks.js';
export type { WithTaskOptions } from './with-task.js';
export { fetchTrustBundle, type CertificateRequest, type IssuedCertificate } from './certificate.js';
export { TaskClosedError, type TaskEndReason } from './errors.js';
export { createDpopKey, dpopProof, type DpopKey } from './dpop.js';
export { mtlsFetch, clientCertificate, certificateThumbprint, type MtlsOptions } from './mtls.js';
