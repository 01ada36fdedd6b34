import { compilePolicy, parsePolicyText, type CompiledPolicy, type DecisionInput } from '../../src/policy/index.ts';

export const PAYMENTS = 'wimse://example.org/svc/payments';
export const BILLING = 'wimse://example.org/svc/billing';

/** The policy of docs/policy.md's first example. */
export const EXAMPLE_YAML = `
version: 1
destinations:
  - workload: ${PAYMENTS}
    audiences: [https://payments.example.org]
    rules:
      - name: read-invoices
        paths: [{exact: /health}, {prefix: /invoices/}, {template: "/invoices/{id}/lines"}]
        methods: [GET, HEAD]
        callers:
          - ${BILLING}
          - {prefix: wimse://example.org/team-a/}
          - {trustDomain: partner.example}
        authn: [mtls, wpt, httpsig]
      - name: pay
        paths: [{exact: /pay}]
        methods: [POST]
        callers: [wimse://example.org/svc/checkout]
        authn: [httpsig]
      - name: status-any-method
        paths: [{template: "/status/{component}"}]
        callers: [{trustDomain: example.org, scheme: spiffe}]
        authn: [any]
  - workload: spiffe://example.org/ns/default/sa/ledger
    rules: []
`;

export function compileYaml(text: string, version = 1): CompiledPolicy {
  const r = parsePolicyText(text);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return compilePolicy(r.value, version);
}

export const req = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  caller: BILLING,
  via: 'mtls',
  destination: PAYMENTS,
  method: 'GET',
  path: '/invoices/42',
  ...over,
});
