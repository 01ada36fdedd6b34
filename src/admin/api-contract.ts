/**
 * The admin API's contract (proto/wimse/admin/v1/admin.proto), apart from its handlers, so that
 * a client (`wimsectl`) loads the proto and grpc-js, and nothing of the node.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

let definition: grpc.ServiceDefinition | undefined;
export function adminServiceDefinition(): grpc.ServiceDefinition {
  if (!definition) {
    const pkg = protoLoader.loadSync('wimse/admin/v1/admin.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true });
    definition = pkg['wimse.admin.v1.Admin'] as unknown as grpc.ServiceDefinition;
  }
  return definition;
}

/** For clients (`wimsectl`, tests). */
export function adminClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(adminServiceDefinition(), 'Admin');
}
