/**
 * The admin gRPC service (proto/wimse/admin/v1/admin.proto), used by `wimsectl`. Each RPC is a
 * small handler over the node's parts (api-registry.ts, api-trust.ts, api-policy.ts); this file
 * loads the contract, authenticates every call with the admin token and turns failures into
 * gRPC statuses (api-errors.ts).
 */
import * as grpc from '@grpc/grpc-js';
import type { AdminApiDeps } from './api-deps.ts';
import { adminServiceDefinition } from './api-contract.ts';
import { clusterHandlers } from './api-cluster.ts';
import { AdminError, toServiceError } from './api-errors.ts';
import { policyHandlers } from './api-policy.ts';
import { registryHandlers } from './api-registry.ts';
import { trustHandlers } from './api-trust.ts';

export type { AdminApiDeps, NodeBundleStatus } from './api-deps.ts';

export { adminClientConstructor, adminServiceDefinition } from './api-contract.ts';

const READ_ONLY = /^(List|Get|Test)|^BundleStatus$/;

/** Who made a call: the node whose admin token it carried (this node's name for its own) and its address. */
export interface Caller {
  readonly adminTokenOf: string;
  readonly peer: string;
}

export type Handler = (request: any, caller: Caller) => Promise<unknown>;

/** A serialized section: read-modify-write of persisted state never interleaves. */
export function serialized(): <T>(fn: () => Promise<T>) => Promise<T> {
  let queue: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };
}

export function adminApiService(deps: AdminApiDeps): grpc.UntypedServiceImplementation {
  const log = deps.logger;
  const exclusive = serialized();
  const handlers: Record<string, Handler> = {
    ...registryHandlers(deps, exclusive),
    ...trustHandlers(deps, exclusive),
    ...policyHandlers(deps, exclusive),
    ...clusterHandlers(deps),
  };
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(adminServiceDefinition())) {
    const handler = handlers[name];
    if (!handler) throw new Error(`admin API: no handler for ${name}`);
    impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      (async () => {
        const holder = deps.adminTokens.holder(call.metadata.get('authorization').map(String));
        if (!holder)
          throw new AdminError(
            grpc.status.UNAUTHENTICATED,
            'the admin token is missing or wrong. Pass it with --token-file FILE or WIMSE_ADMIN_TOKEN (the node keeps it in admin.tokenFile, or <stateDir>/admin-token)',
          );
        const res = await handler(call.request, { adminTokenOf: holder.own ? deps.nodeName : holder.node, peer: call.getPeer() });
        // Changes are logged at info (an audit trail of operator actions), reads at debug.
        if (READ_ONLY.test(name)) log.debug({ rpc: name }, 'admin call');
        else log.info({ rpc: name }, 'admin call');
        return res;
      })().then(
        (res) => cb(null, res),
        (e: unknown) => {
          const err = toServiceError(e, (x) => log.error({ rpc: name, err: (x as Error)?.message }, 'admin call failed'));
          if (err.code !== grpc.status.INTERNAL) log.info({ rpc: name, code: grpc.status[err.code], details: err.details }, 'admin call refused');
          cb(err);
        },
      );
    };
  }
  return impl;
}
