export * from './clock.ts';
export * from './result.ts';
export * from './workload-id.ts';
export * from './jwk.ts';
export * from './trust-bundle.ts';
