/**
 * The demo's sidecars get their certificates the way Envoy does: a StreamSecrets stream to the
 * control plane (envoy.service.secret.v3), authenticated with the node token in the `authorization`
 * metadata, asking for `default` (our WIC chain and key) and `ROOTCA` (the trust domain's roots).
 * Envoy's protocol (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol): the node on
 * the first message only, empty version and nonce first, then an ACK (version + nonce) for every
 * response.
 */
import * as grpc from '@grpc/grpc-js';
import { envoyProtos, TYPE_URL } from '../src/envoy/protos.ts';
import { decodeSecret, SECRET_DEFAULT, SECRET_ROOTCA } from '../src/envoy/sds-secrets.ts';

interface DiscoveryResponse {
  version_info: string;
  resources: { type_url: string; value: Buffer }[];
  nonce: string;
}

/** What an Envoy needs for mTLS: its chain and key (`default`) and the roots (`ROOTCA`). */
export interface SidecarTls {
  certPem: string;
  keyPem: string;
  caPem: string;
}

const text = (b: unknown): string => Buffer.from(b as Uint8Array).toString('utf8');

/** Open an SDS stream as the Envoy with `nodeId`, wait for both secrets, ACK, and hang up. */
export function fetchSidecarTls(address: string, nodeId: string, nodeToken: string, timeoutMs = 5000): Promise<SidecarTls> {
  const Ctor = grpc.makeClientConstructor(envoyProtos().SecretDiscoveryService, 'SecretDiscoveryService');
  const client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${nodeToken}`);
  const names = [SECRET_DEFAULT, SECRET_ROOTCA];
  const call = client.StreamSecrets(md) as grpc.ClientDuplexStream<unknown, DiscoveryResponse>;
  return new Promise<SidecarTls>((resolve, reject) => {
    const got: Partial<SidecarTls> = {};
    const timer = setTimeout(() => finish(new Error(`SDS: no secrets for ${nodeId} within ${timeoutMs} ms`)), timeoutMs);
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      call.end();
      call.cancel();
      client.close();
      if (err) reject(err);
      else resolve(got as SidecarTls);
    };
    call.on('data', (r: DiscoveryResponse) => {
      for (const any of r.resources) {
        const s = decodeSecret(any);
        if (s.name === SECRET_DEFAULT && s.tls_certificate) {
          got.certPem = text(s.tls_certificate.certificate_chain.inline_bytes);
          got.keyPem = text(s.tls_certificate.private_key.inline_bytes);
        } else if (s.name === SECRET_ROOTCA && s.validation_context) {
          got.caPem = text(s.validation_context.trusted_ca.inline_bytes);
        }
      }
      // ACK: the version and nonce just received, the same names.
      call.write({ resource_names: names, type_url: TYPE_URL.secret, version_info: r.version_info, response_nonce: r.nonce });
      if (got.certPem && got.keyPem && got.caPem) finish();
    });
    call.on('error', (e: grpc.ServiceError) => {
      if (!done) finish(new Error(`SDS refused ${nodeId}: ${e.details || e.message}`));
    });
    call.write({
      node: { id: nodeId, cluster: 'demo', user_agent_name: 'envoy' },
      resource_names: names,
      type_url: TYPE_URL.secret,
      version_info: '',
      response_nonce: '',
    });
  });
}
