/**
 * The Workload API (proto/wimse/workload/v1/workload.proto): applications get a WIT for a key
 * they hold, and watch the trust bundle. Callers authenticate as SDS callers do; each gets only
 * the identities its registration entries allow.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Clock } from '../identity/clock.ts';
import type { PublicJwk } from '../identity/jwk.ts';
import { toSpiffeBundleMap, type TrustBundleSet } from '../identity/trust-bundle.ts';
import { ReplayCache } from '../authn/replay.ts';
import type { Logger } from '../log.ts';
import { ProofError, verifyProof } from './proof.ts';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

let definition: grpc.ServiceDefinition | undefined;
export function workloadServiceDefinition(): grpc.ServiceDefinition {
  if (!definition) {
    const pkg = protoLoader.loadSync('wimse/workload/v1/workload.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true });
    definition = pkg['wimse.workload.v1.WorkloadIdentity'] as unknown as grpc.ServiceDefinition;
  }
  return definition;
}
/** For clients (the SDK, tests). */
export function workloadClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(workloadServiceDefinition(), 'WorkloadIdentity');
}

/** Who is calling, as established from the call's metadata or TLS peer. */
export interface WorkloadCaller {
  nodeId: string;
}

export interface WorkloadApiPorts {
  /** Authenticate the caller of a call; throws a grpc status error when it cannot be. */
  authenticate(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): WorkloadCaller;
  /** May this caller receive this identity? */
  entitled(caller: WorkloadCaller, workloadId: string): boolean;
  mintWit(sub: string, jwk: PublicJwk): Promise<{ token: string; exp: number }>;
  bundles(): TrustBundleSet;
  /** Subscribe to bundle changes; returns an unsubscribe function. */
  onBundlesChange(listener: () => void): () => void;
  clock: Clock;
  logger: Logger;
}

const statusError = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;

export function workloadApiService(ports: WorkloadApiPorts): grpc.UntypedServiceImplementation {
  const replay = new ReplayCache({ maxEntries: 100_000 });
  return {
    FetchWIT(call: grpc.ServerUnaryCall<{ workload_id: string; proof: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      (async () => {
        const caller = ports.authenticate(call);
        const id = call.request.workload_id;
        // The same answer for "not a valid identifier" and "not yours": nothing about other
        // workloads leaks.
        if (!ports.entitled(caller, id)) throw statusError(grpc.status.PERMISSION_DENIED, 'caller is not entitled to the requested identity');
        const nowSec = Math.floor(ports.clock.now() / 1000);
        let jwk: PublicJwk;
        try {
          const proof = await verifyProof(call.request.proof, { nowSec, replay });
          if (proof.sub !== id) throw new ProofError('proof.sub', 'the proof names another workload');
          jwk = proof.jwk;
        } catch (e) {
          if (e instanceof ProofError)
            throw statusError(e.code === 'proof.replay_cache_full' ? grpc.status.UNAVAILABLE : grpc.status.INVALID_ARGUMENT, `${e.code}: ${e.message}`);
          throw e;
        }
        const wit = await ports.mintWit(id, jwk);
        ports.logger.info({ node: caller.nodeId, sub: id, exp: wit.exp }, 'WIT issued');
        const life = wit.exp - nowSec;
        return { wit: wit.token, expires_at: wit.exp, refresh_at: nowSec + Math.floor(life * (0.5 + Math.random() * 0.1)) };
      })().then(
        (res) => cb(null, res),
        (err: unknown) => {
          if ((err as grpc.ServiceError).code !== undefined && (err as grpc.ServiceError).details !== undefined) cb(err as grpc.ServiceError);
          else {
            ports.logger.error({ err: (err as Error).message }, 'FetchWIT failed');
            cb(statusError(grpc.status.INTERNAL, 'internal error'));
          }
        },
      );
    },
    WatchBundles(call: grpc.ServerWritableStream<unknown, unknown>) {
      try {
        ports.authenticate(call);
      } catch (err) {
        call.destroy(err as Error);
        return;
      }
      let last = '';
      const send = () => {
        const text = JSON.stringify(toSpiffeBundleMap(ports.bundles()));
        if (text === last) return;
        last = text;
        call.write({ bundle_map_json: text, version: createHash('sha256').update(text).digest('base64url').slice(0, 16) });
      };
      send();
      const off = ports.onBundlesChange(send);
      call.on('cancelled', off);
      call.on('close', off);
      call.on('error', off);
    },
  };
}
