/** Test clients of the Workload API (src/workload-api/server.ts) over real gRPC. */
import * as grpc from '@grpc/grpc-js';
import { workloadClientConstructor } from '../../src/workload-api/server.ts';

export type WorkloadApiTestClient = grpc.Client & Record<string, any>;

/** A plaintext Workload API client; close it when done. */
export function workloadApiClient(address: string): WorkloadApiTestClient {
  const Ctor = workloadClientConstructor();
  return new Ctor(address, grpc.credentials.createInsecure()) as WorkloadApiTestClient;
}

/** Metadata carrying a node token, or none. */
export function tokenMetadata(token?: string): grpc.Metadata {
  const m = new grpc.Metadata();
  if (token) m.set('authorization', `Bearer ${token}`);
  return m;
}

/** A WatchBundles stream on `client`: its first message, and the status it ends with. */
export function watchBundles(client: WorkloadApiTestClient, token: string) {
  const call = client.WatchBundles({}, tokenMetadata(token));
  call.on('error', () => {}); // the status says it
  const first = new Promise<any>((resolve, reject) => {
    call.once('data', resolve);
    call.once('status', (s: grpc.StatusObject) => reject(new Error(`ended before its first message: ${s.code} ${s.details}`)));
  });
  first.catch(() => {});
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return { first, status, cancel: () => call.cancel() };
}
