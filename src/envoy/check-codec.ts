/**
 * The wire codec of `envoy.service.auth.v3.Authorization/Check`, on every request's path.
 *
 * proto-loader's generic codec converts each message twice: a CheckRequest is decoded and then
 * copied into a plain object (`toObject`), and a CheckResponse is rebuilt from a plain object
 * (`fromObject`) before it is encoded. Check reads a handful of fields and answers with a small
 * message, so here the request is decoded once and read as decoded (protobufjs messages carry
 * the same wire field names, `keepCase`), and the response is encoded straight from the plain
 * object check-response.ts builds, its one enum given by number. Same bytes in, same bytes out:
 * test/envoy/check-codec.test.ts compares both directions with proto-loader's codec.
 */
import type * as grpc from '@grpc/grpc-js';
import type * as Protobuf from 'protobufjs';
import type { CheckRequestMessage } from './check-request.ts';
import { envoyProtos } from './protos.ts';

interface Codec {
  request: Protobuf.Type;
  response: Protobuf.Type;
  statusCodes: Record<string, number>;
}

let codec: Codec | undefined;

function types(): Codec {
  if (codec) return codec;
  const root = envoyProtos().root;
  codec = {
    request: root.lookupType('envoy.service.auth.v3.CheckRequest'),
    response: root.lookupType('envoy.service.auth.v3.CheckResponse'),
    statusCodes: root.lookupEnum('envoy.type.v3.StatusCode').values,
  };
  return codec;
}

/** Decode a CheckRequest; throws on bytes that are not one (grpc-js then fails the call). */
export function decodeCheckRequest(bytes: Buffer): CheckRequestMessage {
  return types().request.decode(bytes) as unknown as CheckRequestMessage;
}

/**
 * Encode a CheckResponse built by check-response.ts: wire field names, `google.protobuf.Struct`
 * values in protobufjs's camelCase, `denied_response.status.code` as an `envoy.type.v3.StatusCode`
 * name. The name is mapped to its number; an unknown name is refused rather than sent as 0.
 */
export function encodeCheckResponse(res: Record<string, unknown>): Buffer {
  const t = types();
  const denied = res.denied_response as { status?: { code?: unknown } } | undefined;
  let msg = res;
  if (denied?.status && typeof denied.status.code === 'string') {
    const code = t.statusCodes[denied.status.code];
    if (code === undefined) throw new Error(`unknown envoy.type.v3.StatusCode ${denied.status.code}`);
    msg = { ...res, denied_response: { ...denied, status: { ...denied.status, code } } };
  }
  return t.response.encode(msg).finish() as Buffer;
}

/** The Authorization service definition for `server.addService`, with this codec. */
export function authorizationService(): grpc.ServiceDefinition {
  const def = envoyProtos().Authorization as unknown as Record<string, grpc.MethodDefinition<unknown, unknown>>;
  const check = def.Check!;
  return {
    Check: {
      ...check,
      requestDeserialize: (bytes: Buffer) => decodeCheckRequest(bytes),
      responseSerialize: (res: unknown) => encodeCheckResponse(res as Record<string, unknown>),
    },
  } as grpc.ServiceDefinition;
}
