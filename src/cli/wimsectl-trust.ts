/** `wimsectl bundle|authority|federation|mint ...`: trust bundles, signing keys, federation, minting. */
import { X509Certificate } from 'node:crypto';
import { jwkThumbprint } from '../ca/keys.ts';
import { parseSpiffeBundleMap } from '../identity/trust-bundle.ts';
import { CliError, UsageError, flag, flagOrPositional, flags, multi, noPositionals, required, value, type Command, type Ctx } from './wimsectl-args.ts';
import { isoMs, rfc3339, table, withTimes } from './wimsectl-format.ts';
import { ttlSeconds } from './wimsectl-registry.ts';

const doc = (d: { text: string }): any => JSON.parse(d.text);

const KIND = (c: Ctx): string => {
  const k = required(c.args, '--kind', 'x509 or wit');
  if (k !== 'x509' && k !== 'wit') throw new UsageError('--kind must be x509 or wit');
  return k;
};

interface KeyView {
  kind: string;
  kid: string;
  alg: string;
  status: string;
  notBefore: number;
  notAfter: number;
  activatedAt?: number;
  taintedAt?: number;
  revokedAt?: number;
}
/** `-o json|yaml`: a key with its times as RFC 3339. */
const keyView = (k: KeyView) => withTimes(k, ['notBefore', 'notAfter', 'activatedAt', 'taintedAt', 'revokedAt']);
const KIND_FLAG = value('x509|wit', 'x509 (the CA key that signs WICs) or wit (the key that signs WITs)');
const KID_FLAG = value('KID', 'the key id, as wimsectl authority show prints it');
const TRUST_DOMAIN = value('TD', 'one trust domain only');
const keyRows = (keys: KeyView[]) => keys.map((k) => [k.kind, k.kid, k.alg, k.status, isoMs(k.notBefore), isoMs(k.notAfter)]);
const KEY_HEADER = ['KIND', 'KID', 'ALG', 'STATUS', 'NOT BEFORE', 'NOT AFTER'];

interface BundleKey {
  trustDomain: string;
  kind: 'x509' | 'wit';
  kid: string;
  alg?: string;
  notAfter?: string;
}

/** The keys of a bundle map, per trust domain: X.509 roots (with their expiry) and WIT keys. */
function bundleKeys(text: string): BundleKey[] {
  const parsed = parseSpiffeBundleMap(text);
  if (!parsed.ok) throw new CliError(`the node sent a bundle map this client cannot read: ${parsed.errors.join('; ')}`, 1);
  const keys: BundleKey[] = [];
  for (const b of parsed.value.values()) {
    for (const der of b.x509Authorities) {
      const cert = new X509Certificate(der);
      keys.push({ trustDomain: b.trustDomain, kind: 'x509', kid: jwkThumbprint(cert.publicKey.export({ format: 'jwk' }) as never), notAfter: rfc3339(Date.parse(cert.validTo)) });
    }
    for (const k of b.witKeys) keys.push({ trustDomain: b.trustDomain, kind: 'wit', kid: k.kid, alg: k.alg });
  }
  return keys;
}

const authorityVerb = (rpc: string, verb: string, needsKid: boolean): Command => ({
  usage: `authority ${verb} --kind x509|wit${needsKid ? ' --kid KID' : ''}`,
  summary:
    verb === 'prepare'
      ? 'prepare a new key (published in bundles, not signing yet)'
      : verb === 'activate'
        ? 'make the prepared key the active one'
        : verb === 'taint'
          ? 'stop signing with a key now; what it signed is re-issued'
          : 'remove a tainted key from the bundles and erase it',
  flags: { '--kind': KIND_FLAG, ...(needsKid ? { '--kid': KID_FLAG } : {}) },
  async run(c) {
    noPositionals(c.args);
    const kind = KIND(c);
    const kid = needsKid ? required(c.args, '--kid', 'see wimsectl authority show') : '';
    const k = doc(await c.call(rpc, { kind, kid })) as KeyView;
    c.show(keyView(k), () => `${k.kind} key ${k.kid} is ${k.status}\n`);
    return 0;
  },
});

export const bundleCommands: Record<string, Command> = {
  show: {
    usage: 'bundle show [--trust-domain TD]',
    summary: 'the trust bundles this node serves: keys per trust domain',
    flags: { '--trust-domain': TRUST_DOMAIN },
    async run(c) {
      noPositionals(c.args);
      const td = flag(c.args, '--trust-domain') ?? '';
      const d = await c.call('GetBundle', { format: 'spiffe', trust_domain: td });
      const keys = bundleKeys(td ? JSON.stringify({ trust_domains: { [td]: JSON.parse(d.text) } }) : d.text);
      c.show(keys, () => table(['TRUST DOMAIN', 'KEY', 'KID', 'NOT AFTER'], keys.map((k) => [k.trustDomain, k.kind === 'wit' ? `wit ${k.alg}` : 'x509', k.kid, k.notAfter ?? '-'])));
      return 0;
    },
  },
  status: {
    usage: 'bundle status',
    summary: 'which key ids each node trusts (is the new key everywhere yet?)',
    flags: {},
    async run(c) {
      noPositionals(c.args);
      const st = doc(await c.call('BundleStatus')) as { nodes: Array<{ node: string; trustDomains: Array<{ trustDomain: string; sequence?: number; x509Authorities: string[]; witKeys: string[] }> }> };
      c.show(st, () =>
        table(
          ['NODE', 'TRUST DOMAIN', 'SEQUENCE', 'X509 AUTHORITIES', 'WIT KEYS'],
          st.nodes.flatMap((n) => n.trustDomains.map((t) => [n.node, t.trustDomain, String(t.sequence ?? '-'), t.x509Authorities.join(','), t.witKeys.join(',')])),
        ),
      );
      return 0;
    },
  },
  export: {
    usage: 'bundle export [--format spiffe|pem] [--trust-domain TD]',
    summary: 'print a bundle: a SPIFFE bundle map, one trust domain\'s SPIFFE bundle (JWKS), or PEM roots; always the document itself (-o changes nothing)',
    flags: { '--format': value('spiffe|pem', 'spiffe (default): a SPIFFE bundle map, or one bundle with --trust-domain; pem: X.509 roots'), '--trust-domain': value('TD', 'that trust domain\'s bundle only') },
    async run(c) {
      noPositionals(c.args);
      const format = flag(c.args, '--format') ?? 'spiffe';
      if (format !== 'spiffe' && format !== 'pem') throw new UsageError('--format must be spiffe or pem');
      c.out((await c.call('GetBundle', { format, trust_domain: flag(c.args, '--trust-domain') ?? '' })).text);
      return 0;
    },
  },
};

export const authorityCommands: Record<string, Command> = {
  show: {
    usage: 'authority show [--kind x509|wit]',
    summary: "this node's signing keys and their lifecycle status",
    flags: { '--kind': value('x509|wit', 'one kind of key only') },
    async run(c) {
      noPositionals(c.args);
      const kind = flag(c.args, '--kind');
      if (kind !== undefined && kind !== 'x509' && kind !== 'wit') throw new UsageError('--kind must be x509 or wit');
      const d = doc(await c.call('ListAuthorities')) as { trustDomain: string; keys: KeyView[] };
      const keys = d.keys.filter((k) => kind === undefined || k.kind === kind);
      c.show({ trustDomain: d.trustDomain, keys: keys.map(keyView) }, () => table(KEY_HEADER, keyRows(keys)));
      return 0;
    },
  },
  prepare: authorityVerb('PrepareAuthority', 'prepare', false),
  activate: authorityVerb('ActivateAuthority', 'activate', false),
  taint: authorityVerb('TaintAuthority', 'taint', true),
  revoke: authorityVerb('RevokeAuthority', 'revoke', true),
};

export const federationCommands: Record<string, Command> = {
  add: {
    usage: 'federation add --trust-domain TD --bundle FILE|-',
    summary: "trust another trust domain, from its SPIFFE bundle (its `wimsectl bundle export --trust-domain TD`)",
    flags: { '--trust-domain': value('TD', 'the trust domain to federate with'), '--bundle': value('FILE|-', 'its SPIFFE bundle (JWKS), from its wimsectl bundle export --trust-domain TD; - reads stdin') },
    async run(c) {
      noPositionals(c.args);
      const trust_domain = required(c.args, '--trust-domain', 'the trust domain to federate with');
      const bundle_json = c.readInput(required(c.args, '--bundle', 'its SPIFFE bundle (JWKS) file, or - for stdin'), '--bundle');
      await c.call('AddFederation', { trust_domain, bundle_json });
      c.show({ added: { trustDomain: trust_domain } }, () => `federated with ${trust_domain}\n`);
      return 0;
    },
  },
  list: {
    usage: 'federation list',
    summary: 'federated trust domains and where they come from',
    flags: {},
    async run(c) {
      noPositionals(c.args);
      const list = doc(await c.call('ListFederation')) as Array<{ trustDomain: string; source: string; x509Authorities: number; witKeys: number; sequence?: number }>;
      c.show(list, () => table(['TRUST DOMAIN', 'SOURCE', 'X509 AUTHORITIES', 'WIT KEYS', 'SEQUENCE'], list.map((f) => [f.trustDomain, f.source, String(f.x509Authorities), String(f.witKeys), String(f.sequence ?? '-')])));
      return 0;
    },
  },
  remove: {
    usage: 'federation remove TD',
    summary: 'stop trusting a trust domain added through the API',
    flags: { '--trust-domain': value('TD', 'the trust domain (or as an argument)') },
    async run(c) {
      const trust_domain = flagOrPositional(c.args, '--trust-domain', 'the trust domain');
      await c.call('RemoveFederation', { trust_domain });
      c.show({ removed: { trustDomain: trust_domain } }, () => `no longer federated with ${trust_domain}\n`);
      return 0;
    },
  },
};

const WORKLOAD_ID = value('WORKLOAD_ID', 'the workload identifier (wimse://TD/... or spiffe://TD/...)');
const MINT_TTL = value('DURATION', "lifetime: seconds, or 5m, 1h (default: the node's)");

export const mintCommands: Record<string, Command> = {
  wit: {
    usage: 'mint wit --id WORKLOAD_ID --public-key JWK_FILE [--ttl DURATION]',
    summary: 'mint a WIT bound to a public key (debugging)',
    flags: { '--id': WORKLOAD_ID, '--public-key': value('JWK_FILE', "the workload's public JWK, with alg; the WIT is bound to it (cnf.jwk)"), '--ttl': MINT_TTL },
    async run(c) {
      noPositionals(c.args);
      const workload_id = required(c.args, '--id', 'the workload identifier');
      const public_jwk_json = c.readInput(required(c.args, '--public-key', "the workload's public JWK file, with alg"), '--public-key');
      const w = doc(await c.call('MintWIT', { workload_id, public_jwk_json, ttl_seconds: ttlSeconds(flag(c.args, '--ttl')) }));
      c.show({ token: w.token, sub: w.sub, jti: w.jti, kid: w.kid, alg: w.alg, issuedAt: rfc3339(w.iat * 1000), expiresAt: rfc3339(w.exp * 1000) }, () => `${w.token}\n`);
      return 0;
    },
  },
  cert: {
    usage: 'mint cert --id WORKLOAD_ID [--public-key JWK_FILE | --csr CSR_FILE] [--dns NAME]... [--ttl DURATION]',
    summary: 'mint a WIC (X.509); without a key or CSR a key pair is generated and printed',
    flags: {
      '--id': WORKLOAD_ID,
      '--public-key': value('JWK_FILE', "the workload's public JWK"),
      '--csr': value('CSR_FILE', 'a PEM PKCS#10 CSR signed by the workload key'),
      '--dns': multi('NAME', 'a DNS SAN (lower case)'),
      '--ttl': MINT_TTL,
    },
    async run(c) {
      noPositionals(c.args);
      const workload_id = required(c.args, '--id', 'the workload identifier');
      const jwk = flag(c.args, '--public-key');
      const csr = flag(c.args, '--csr');
      if (jwk !== undefined && csr !== undefined) throw new UsageError('give --public-key or --csr, not both');
      const w = doc(
        await c.call('MintCertificate', {
          workload_id,
          public_jwk_json: jwk !== undefined ? c.readInput(jwk, '--public-key') : '',
          csr_pem: csr !== undefined ? c.readInput(csr, '--csr') : '',
          dns_names: flags(c.args, '--dns'),
          ttl_seconds: ttlSeconds(flag(c.args, '--ttl')),
        }),
      );
      c.show(withTimes(w, ['notBefore', 'notAfter']), () => `${w.certPem}${w.privateKeyPem ?? ''}`);
      return 0;
    },
  },
};
