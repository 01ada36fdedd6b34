import test from 'ava';
import { readFile } from 'node:fs/promises';
import { compilePolicy, parsePolicyText, policyTest } from '../../src/policy/index.ts';

const doc = await readFile(new URL('../../docs/policy.md', import.meta.url), 'utf8');

test('policy docs - the documented example loads and explains exactly as docs/policy.md shows', (t) => {
  const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  t.truthy(yaml);
  const r = parsePolicyText(yaml!);
  t.true(r.ok, r.ok ? '' : r.errors.join('\n'));
  if (!r.ok) return;
  const shown = /\n\$ wimsectl policy test [^\n]*\n[^\n]*\n([\s\S]*?)```/.exec(doc)?.[1];
  t.truthy(shown);
  const id = /decision id: (\S+)/.exec(shown!)?.[1];
  const out = policyTest(
    compilePolicy(r.value, 3),
    { from: 'wimse://example.org/svc/checkout', to: 'wimse://example.org/svc/payments', method: 'POST', path: '/pay', via: 'wpt' },
    { newId: () => id! },
  );
  t.is(out.text + '\n', shown ?? '');
});
