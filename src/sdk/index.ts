/**
 * The Node SDK for workloads (flows 2 and 3 of the WIMSE architecture): get and renew a WIT from
 * the Workload API, sign outgoing requests (WPT or HTTP message signature), and authenticate
 * incoming ones in a Node HTTP server. See docs/sdk.md.
 */
export { WorkloadClient, type WorkloadClientOptions, type WorkloadClientEvents, type WorkloadCredential } from './workload-client.ts';
export { WorkloadApiError, fromGrpcError, type WorkloadApiErrorCode } from './errors.ts';
export { generateWorkloadKey, WORKLOAD_KEY_ALGS, type WorkloadKeyAlg, type WorkloadKeyPair } from './keys.ts';
export { createWitRequestProof } from './proof.ts';
export { planRenewal, backoffDelay } from './renewal.ts';
export { systemTimers, type Timers } from './timers.ts';
export type { ConnectionOptions } from './connection.ts';
export {
  signRequestHttpSig,
  defaultAudience,
  WIT_HEADER,
  type OutgoingRequest,
  type CredentialSource,
  type HttpSigOptions,
  type SignedRequestContext,
} from './outgoing.ts';
export { signRequestWpt, type WptOptions } from './sign-wpt.ts';
export { wimseFetch, type WimseFetchOptions, type WimseFetchSource, type WimseResponse, type WimseResponseInfo } from './fetch.ts';
export {
  wimseMiddleware,
  sendProblem,
  type WimseMiddlewareOptions,
  type WimseCaller,
  type WimseIncomingMessage,
  type RequestAuthenticator,
  type Next,
} from './middleware.ts';
