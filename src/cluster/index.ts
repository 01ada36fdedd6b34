/** The cluster bus: contracts, the in-process and NATS implementations, presence and activation gating. */
export * from './types.ts';
export { ClusterError, isClusterError, type ClusterErrorCode } from './errors.ts';
export { checkRecord, policyDigest, isNodeName, expectedKey as recordKey } from './records.ts';
export { MAX_MESSAGE_BYTES, type Envelope } from './envelope.ts';
export { bucketName, changeSubject, eventSubject, encodeToken, decodeToken, kvKey } from './naming.ts';
export { MemoryBus, MemoryHub, type MemoryBusOptions } from './memory-bus.ts';
export { NatsBus, type NatsBusOptions } from './nats-bus.ts';
export { publishOwnKeys, type OwnKeysResult } from './own-keys.ts';
export { createBus, type ClusterSettings, type NatsTuning } from './create.ts';
export { isForgotten, visibleRecord } from './forgotten.ts';
export { Presence, NodeHeartbeat, allNodesTrust, isLive, liveNodes, peersMissing, trustReport, type TrustReport, type NodeTrust, type PresenceOptions, type HeartbeatOptions } from './presence.ts';
export { toBusKey, toPeerKey, ownKeySeq, toRegistrationRecords, fromRegistrationRecords, type OwnPublicKey, type PeerPublicKey, type RegistrationEntry } from './mesh-records.ts';
