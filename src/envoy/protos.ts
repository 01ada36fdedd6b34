/**
 * Envoy's API protos, loaded once at run time.
 *
 * Source: the pinned `@grpc/grpc-js-xds` package ships a subset of envoyproxy/data-plane-api
 * plus the xds, googleapis and protoc-gen-validate protos in its `deps/` folder (DESIGN.md
 * "Decisions"). That layout is private to the package; `protoDirs()` is the one
 * place that knows it.
 *
 * Two views over the same files:
 * - a proto-loader package definition, for grpc-js service definitions (SDS, ext_authz) and for
 *   serializing Envoy messages (`keepCase: true`, so field names are the wire names);
 * - a protobufjs `Root`, for validating configs and resources by reflection (validate-config.ts).
 *
 * Both are built lazily on first use; loading takes a few hundred milliseconds.
 */
import { createRequire } from 'node:module';
import { dirname, join, isAbsolute } from 'node:path';
import { accessSync, constants } from 'node:fs';
import * as protoLoader from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';
import type * as Protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
// Use the very protobufjs instance proto-loader uses: it has registered the extra well-known
// types (descriptor, api, type) that Envoy's annotations import.
const protobuf = createRequire(require.resolve('@grpc/proto-loader'))('protobufjs') as typeof Protobuf;

/** Exact type URLs (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol). */
export const TYPE_URL = {
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  spiffeValidatorConfig:
    'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
  checkRequest: 'type.googleapis.com/envoy.service.auth.v3.CheckRequest',
  checkResponse: 'type.googleapis.com/envoy.service.auth.v3.CheckResponse',
  bootstrap: 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap',
} as const;

/** Fully qualified message names we look up. */
export const MESSAGE = {
  secret: 'envoy.extensions.transport_sockets.tls.v3.Secret',
  spiffeValidatorConfig: 'envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
  discoveryRequest: 'envoy.service.discovery.v3.DiscoveryRequest',
  discoveryResponse: 'envoy.service.discovery.v3.DiscoveryResponse',
  bootstrap: 'envoy.config.bootstrap.v3.Bootstrap',
} as const;

export const SPIFFE_VALIDATOR_NAME = 'envoy.tls.cert_validator.spiffe';

/**
 * Every file loaded explicitly. Files that only something else imports come in through the
 * imports; these are the roots, including every extension our YAML configs name in a
 * `typed_config` (an Any is only resolvable when its type was loaded).
 */
export const PROTO_FILES = [
  'envoy/service/secret/v3/sds.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/common.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
] as const;

export interface ProtoDirs {
  readonly envoyApi: string;
  readonly includeDirs: readonly string[];
}

/** The include directories inside the installed `@grpc/grpc-js-xds` package. */
export function protoDirs(): ProtoDirs {
  const pkg = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = join(pkg, 'deps');
  const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
  return { envoyApi: includeDirs[0]!, includeDirs };
}

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: false,
};

export interface EnvoyProtos {
  /** `envoy.service.secret.v3.SecretDiscoveryService`, for `server.addService`. */
  readonly SecretDiscoveryService: grpc.ServiceDefinition;
  /** `envoy.service.auth.v3.Authorization`, for `server.addService`. */
  readonly Authorization: grpc.ServiceDefinition;
  readonly packageDefinition: protoLoader.PackageDefinition;
  /** A protobufjs root over the same files, for reflection-based validation and encoding. */
  readonly root: Protobuf.Root;
}

let cached: EnvoyProtos | undefined;

/** Load (once) and return Envoy's protos. Throws if the files are missing: a packaging error. */
export function envoyProtos(): EnvoyProtos {
  if (cached) return cached;
  const { includeDirs } = protoDirs();
  const packageDefinition = protoLoader.loadSync([...PROTO_FILES], {
    ...LOADER_OPTIONS,
    includeDirs: [...includeDirs],
  });
  const service = (name: string): grpc.ServiceDefinition => {
    const def = packageDefinition[name];
    if (!def || !('StreamSecrets' in def || 'Check' in def)) throw new Error(`proto service ${name} not loaded`);
    return def as unknown as grpc.ServiceDefinition;
  };
  cached = Object.freeze({
    SecretDiscoveryService: service('envoy.service.secret.v3.SecretDiscoveryService'),
    Authorization: service('envoy.service.auth.v3.Authorization'),
    packageDefinition,
    root: loadRoot(includeDirs),
  });
  return cached;
}

function loadRoot(includeDirs: readonly string[]): Protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const full = join(dir, target);
      try {
        accessSync(full, constants.R_OK);
        return full;
      } catch {
        // try the next include dir
      }
    }
    // google/protobuf/*.proto are bundled into protobufjs ("common" files).
    return target;
  };
  root.loadSync([...PROTO_FILES], { keepCase: true });
  root.resolveAll();
  return root;
}

/** The protobufjs type for a fully qualified message name (no leading dot). */
export function messageType(name: string): Protobuf.Type {
  return envoyProtos().root.lookupType(name);
}

/** The message name a type URL points at, or undefined when it is not `type.googleapis.com/...`-shaped. */
export function typeNameOfUrl(typeUrl: string): string | undefined {
  const slash = typeUrl.lastIndexOf('/');
  if (slash < 0 || slash === typeUrl.length - 1) return undefined;
  return typeUrl.slice(slash + 1);
}
