/** The PDP: route policy written by mesh operators, decided per request (docs/policy.md). */
export * from './model.ts';
export { checkPolicy } from './validate.ts';
export { parsePolicyText, parsePolicyYaml, MAX_POLICY_BYTES, type LoadOptions } from './load.ts';
export { checkRawPath, MAX_REQUEST_PATH_LENGTH, type PathCheck } from './request-path.ts';
export { compilePolicy, compileChecked, denyAllPolicy, audiencesFor, policyDigest, type CompiledPolicy, type CompiledDestination, type PolicyStatus } from './compile.ts';
export { decide, type DecideOptions } from './decide.ts';
export {
  explain,
  formatExplanation,
  policyTest,
  pathPatternMatches,
  callerPatternMatches,
  type Explanation,
  type RuleExplanation,
  type CheckOutcome,
  type PolicyTestArgs,
} from './explain.ts';
export { PolicyStore, type LoadResult, type StoreListener } from './store.ts';
export { watchPolicyFile, type WatchOptions, type WatchEvent, type PolicyWatch } from './file-watch.ts';
export {
  authorize,
  type PdpMode,
  type ExternalPdp,
  type ExternalRequest,
  type ExternalVerdict,
  type ExternalReason,
  type AuthorizeOptions,
} from './authorize.ts';
export { createHttpPdp, verdictOf, type HttpPdp, type HttpPdpOptions } from './external.ts';
