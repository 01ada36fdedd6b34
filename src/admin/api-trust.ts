/**
 * Admin handlers for trust: bundles and their status, signing keys ("authorities") and the
 * operator verbs on them, federation with other trust domains, and minting for debugging.
 */
import { X509Certificate } from 'node:crypto';
import { rm, readFile } from 'node:fs/promises';
import { jwkThumbprint } from '../ca/keys.ts';
import { KEY_KINDS, type KeyKind } from '../ca/key-record.ts';
import type { FederatedBundleFile } from '../ca/bundle.ts';
import type { LeafKeySource } from '../ca/leaf-key.ts';
import { parseTrustDomain } from '../identity/workload-id.ts';
import {
  MAX_BUNDLE_BYTES,
  parseSpiffeBundle,
  rootsPem,
  toSpiffeBundle,
  toSpiffeBundleMap,
  type TrustBundleSet,
} from '../identity/trust-bundle.ts';
import type { AdminApiDeps, NodeBundleStatus } from './api-deps.ts';
import { failedPrecondition, invalidArgument, notFound } from './api-errors.ts';
import { SerialWriter, federationPath } from './api-state.ts';
import type { Handler } from './api.ts';

const doc = (value: unknown) => ({ text: `${JSON.stringify(value, null, 2)}\n` });
const MAX_TTL_SECONDS = 366 * 24 * 3600;

function checkKind(v: unknown): KeyKind {
  if (!KEY_KINDS.includes(v as KeyKind)) throw invalidArgument('kind', `must be one of ${KEY_KINDS.join(', ')}`);
  return v as KeyKind;
}

function checkTtl(v: number): number | undefined {
  if (!Number.isSafeInteger(v) || v < 0 || v > MAX_TTL_SECONDS) throw invalidArgument('ttl_seconds', `must be 0 (the node's default) or 1-${MAX_TTL_SECONDS} seconds`);
  return v === 0 ? undefined : v;
}

function parseJsonField(field: string, text: string): unknown {
  if (text.length > MAX_BUNDLE_BYTES) throw invalidArgument(field, `exceeds ${MAX_BUNDLE_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidArgument(field, `not JSON (${(e as Error).message})`);
  }
}

/** This node's bundle view: per trust domain, the kids of its roots and WIT keys. */
export function localBundleStatus(node: string, set: TrustBundleSet): NodeBundleStatus {
  return {
    node,
    trustDomains: [...set.values()]
      .sort((a, b) => (a.trustDomain < b.trustDomain ? -1 : 1))
      .map((b) => ({
        trustDomain: b.trustDomain,
        ...(b.sequence !== undefined ? { sequence: b.sequence } : {}),
        x509Authorities: b.x509Authorities.map((der) => jwkThumbprint(new X509Certificate(der).publicKey.export({ format: 'jwk' }) as never)),
        witKeys: b.witKeys.map((k) => k.kid),
      })),
  };
}

export function trustHandlers(deps: AdminApiDeps, exclusive: <T>(fn: () => Promise<T>) => Promise<T>): Record<string, Handler> {
  const { ca } = deps;
  const configTds = new Set(deps.configFederation);
  const isApiFile = (f: FederatedBundleFile, td: string) => typeof f !== 'string' && f.trustDomain === td && !configTds.has(td);

  const bundleOf = (td: string) => {
    const b = ca.bundles().get(td);
    if (!b) throw notFound(`trust domain ${JSON.stringify(td)} is not in this node's bundles (it has ${[...ca.bundles().keys()].join(', ')}). Add it with wimsectl federation add`);
    return b;
  };

  return {
    async GetBundle(req: { format: string; trust_domain: string }) {
      const format = req.format || 'spiffe';
      if (format !== 'spiffe' && format !== 'pem') throw invalidArgument('format', 'must be spiffe (a SPIFFE bundle / bundle map, JSON) or pem (X.509 roots)');
      if (req.trust_domain) {
        const b = bundleOf(req.trust_domain);
        return format === 'pem' ? { text: rootsPem(b) } : doc(toSpiffeBundle(b));
      }
      const set = ca.bundles();
      return format === 'pem' ? { text: [...set.keys()].sort().map((td) => rootsPem(set.get(td)!)).join('') } : doc(toSpiffeBundleMap(set));
    },

    async BundleStatus() {
      const nodes = deps.bundleStatus ? await deps.bundleStatus() : [localBundleStatus(deps.nodeName, ca.bundles())];
      return doc({ nodes });
    },

    async ListAuthorities() {
      return doc({ trustDomain: ca.trustDomain, keys: ca.keys() });
    },
    // The key verbs do not take the `exclusive` lane: the CA orders its own journal writes, and an
    // activation may wait at the cluster's gate for minutes; an emergency taint, revoke or
    // node-token revocation must never queue behind it.
    async PrepareAuthority(req: { kind: string }) {
      return doc(await ca.prepare(checkKind(req.kind)));
    },
    async ActivateAuthority(req: { kind: string }) {
      return doc(await ca.activate(checkKind(req.kind)));
    },
    async TaintAuthority(req: { kind: string; kid: string }) {
      const kind = checkKind(req.kind);
      if (!req.kid) throw invalidArgument('kid', 'is required: the key to taint (see wimsectl authority show)');
      return doc(await ca.taint(kind, req.kid));
    },
    async RevokeAuthority(req: { kind: string; kid: string }) {
      const kind = checkKind(req.kind);
      if (!req.kid) throw invalidArgument('kid', 'is required: the tainted key to revoke (see wimsectl authority show)');
      return doc(await ca.revoke(kind, req.kid));
    },

    async ListFederation() {
      const set = ca.bundles();
      return doc(
        [...set.values()]
          .filter((b) => b.trustDomain !== ca.trustDomain)
          .sort((a, b) => (a.trustDomain < b.trustDomain ? -1 : 1))
          .map((b) => ({
            trustDomain: b.trustDomain,
            source: configTds.has(b.trustDomain) ? 'config' : 'api',
            x509Authorities: b.x509Authorities.length,
            witKeys: b.witKeys.length,
            ...(b.sequence !== undefined ? { sequence: b.sequence } : {}),
          })),
      );
    },

    AddFederation: (req: { trust_domain: string; bundle_json: string }) =>
      exclusive(async () => {
        const td = req.trust_domain;
        const p = parseTrustDomain(td);
        if (!p.ok) throw invalidArgument('trust_domain', `not a valid trust domain (${p.reason}): ${p.message}`);
        if (td === ca.trustDomain) throw invalidArgument('trust_domain', 'is this node\'s own trust domain; federate with another one');
        if (configTds.has(td)) throw failedPrecondition(`trust domain ${JSON.stringify(td)} is federated by the config file (federation[]). Update its bundleFile there`);
        if (!req.bundle_json) throw invalidArgument('bundle_json', `is required: the SPIFFE bundle (JWKS) of ${td}, e.g. from wimsectl bundle export --trust-domain ${td} on its control plane`);
        const parsed = parseSpiffeBundle(td, parseJsonField('bundle_json', req.bundle_json));
        if (!parsed.ok) throw invalidArgument('bundle_json', parsed.errors.join('; '));
        if (parsed.value.x509Authorities.length + parsed.value.witKeys.length === 0)
          throw invalidArgument('bundle_json', 'keys: has no x509-svid or wit-svid key; nothing would be trusted');
        const path = federationPath(deps.stateDir, td);
        const previous = await readFile(path, 'utf8').catch(() => undefined);
        await new SerialWriter(path).write(`${JSON.stringify(JSON.parse(req.bundle_json), null, 2)}\n`);
        const files = [...ca.federatedBundleFiles().filter((f) => !isApiFile(f, td)), { trustDomain: td, path }];
        try {
          await ca.setFederatedBundleFiles(files);
        } catch (e) {
          if (previous === undefined) await rm(path, { force: true });
          else await new SerialWriter(path).write(previous);
          throw e;
        }
        deps.logger.info({ trustDomain: td }, 'federation added');
        return {};
      }),

    RemoveFederation: (req: { trust_domain: string }) =>
      exclusive(async () => {
        const td = req.trust_domain;
        if (!td) throw invalidArgument('trust_domain', 'is required');
        if (configTds.has(td)) throw failedPrecondition(`trust domain ${JSON.stringify(td)} is federated by the config file and cannot be removed through the API. Remove it from federation[] and restart the node`);
        const files = ca.federatedBundleFiles();
        if (!files.some((f) => isApiFile(f, td))) throw notFound(`trust domain ${JSON.stringify(td)} is not federated. List them with wimsectl federation list`);
        await ca.setFederatedBundleFiles(files.filter((f) => !isApiFile(f, td)));
        await rm(federationPath(deps.stateDir, td), { force: true });
        deps.logger.info({ trustDomain: td }, 'federation removed');
        return {};
      }),

    async MintWIT(req: { workload_id: string; public_jwk_json: string; ttl_seconds: number }) {
      if (!req.workload_id) throw invalidArgument('workload_id', 'is required');
      if (!req.public_jwk_json) throw invalidArgument('public_jwk_json', 'is required: a WIT is bound to the workload\'s public key (cnf.jwk); pass the public JWK with its alg');
      const ttlSec = checkTtl(req.ttl_seconds);
      const wit = await ca.mintWit({ sub: req.workload_id, cnf: parseJsonField('public_jwk_json', req.public_jwk_json) as never, ...(ttlSec ? { ttlSec } : {}) });
      return doc(wit);
    },

    async MintCertificate(req: { workload_id: string; public_jwk_json: string; csr_pem: string; dns_names: string[]; ttl_seconds: number }) {
      if (!req.workload_id) throw invalidArgument('workload_id', 'is required');
      if (req.public_jwk_json && req.csr_pem) throw invalidArgument('csr_pem', 'give a public JWK or a CSR, not both');
      const ttlSec = checkTtl(req.ttl_seconds);
      const key: LeafKeySource = req.csr_pem
        ? { csr: req.csr_pem }
        : req.public_jwk_json
          ? { jwk: parseJsonField('public_jwk_json', req.public_jwk_json) as never }
          : { generate: 'ES256' };
      const wic = await ca.issueWic({ id: req.workload_id, key, dnsNames: req.dns_names, ...(ttlSec ? { ttlSec } : {}) });
      return doc(wic);
    },
  };
}
