/** The Identity Server core: key lifecycle, journal, WIC and WIT issuance, trust bundles. */
export { IdentityServer, checkJournal } from './identity-server.ts';
export type { IdentityServerOptions, CaEvent, KeyInfo, PublicKeyInfo, ActivationGate, WicRequest, IssuedWic, WitRequest } from './types.ts';
export { checkPeerKey, applyPeerKeys, type PeerKey } from './peer-keys.ts';
export type { MintedWit } from './wit.ts';
export { WIT_TYP } from './wit.ts';
export type { LeafKeySource } from './leaf-key.ts';
export type { FederatedBundleFile } from './bundle.ts';
export { buildOwnBundle, loadFederatedBundles } from './bundle.ts';
export * from './errors.ts';
export { KEY_KINDS, KEY_STATUSES, CA_ALGS, inBundle } from './key-record.ts';
export type { KeyKind, KeyStatus, CaAlg, KeyRecord } from './key-record.ts';
export {
  DEFAULT_TIMING,
  resolveTiming,
  keyTimes,
  slotOf,
  needsActiveKey,
  hasUsableNext,
  shouldPrepareNext,
  shouldActivateNext,
} from './slot.ts';
export type { Slot, SlotKey, Timing } from './slot.ts';
export { Rotator, decide } from './rotator.ts';
export type { RotatorTarget, RotatorStats, Verb } from './rotator.ts';
export { JOURNAL_FORMAT, JOURNAL_VERSION, journalPath, encodeJournal, decodeJournal } from './journal.ts';
export type { JournalBody } from './journal.ts';
export type { CaLogger } from './logger.ts';
export { jwkThumbprint } from './keys.ts';
