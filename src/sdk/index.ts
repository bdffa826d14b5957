/** Mayfly SDK: the verifier for resource servers and the client for agents and orchestrators. */
export * from './verifier/index.js';
export * from './client/index.js';
export { BrokerError, type BrokerCredentials, type FetchLike } from './http.js';
