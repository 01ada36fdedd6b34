export * from './request.ts';
export * from './errors.ts';
export * from './replay.ts';
