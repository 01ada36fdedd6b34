import test from 'ava';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '../../src/identity/index.ts';
import { authorize, PolicyStore, type Decision, type ExternalPdp, type WatchEvent } from '../../src/policy/index.ts';
import { BILLING, PAYMENTS, req } from './helpers.ts';

const grant = (name: string, prefix: string): string => `version: 1
destinations:
  - workload: ${PAYMENTS}
    rules:
      - {name: ${name}, paths: [{prefix: ${prefix}}], callers: [${BILLING}], authn: [any]}
`;
const A = grant('rule-a', '/a/');
const B = grant('rule-b', '/b/');
const BAD = A.replace('/a/', '/a');

test('policy store - load swaps in a valid policy with a new version and digest', (t) => {
  const s = new PolicyStore();
  t.is(s.decide(req({ path: '/a/1' })).reason, 'policy.empty');
  const r1 = s.load(A);
  t.like(r1, { ok: true, version: 1, changed: true });
  t.is(s.decide(req({ path: '/a/1' })).rule, 'rule-a');
  const r2 = s.load(B);
  t.like(r2, { ok: true, version: 2, changed: true });
  t.not(s.digest, r1.ok ? r1.digest : '');
  t.false(s.decide(req({ path: '/a/1' })).allow);
  t.is(s.decide(req({ path: '/b/1' })).rule, 'rule-b');
  // Reloading the same content is a no-op.
  t.like(s.load(B + '\n# comment\n'), { ok: true, version: 2, changed: false });
});

test('policy store - a bad reload is refused with reasons and the old policy keeps serving', (t) => {
  const s = new PolicyStore();
  s.load(A);
  const events: unknown[] = [];
  s.onLoad((e) => events.push(e));
  const r = s.load(BAD, 'test');
  t.false(r.ok);
  if (!r.ok) {
    t.deepEqual(r.errors, ['destinations[0].rules[0].paths[0].prefix: a prefix must end with / (it grants whole segments)']);
    t.is(r.serving.version, 1);
    t.is(r.serving.status, 'ok');
  }
  t.deepEqual(s.lastErrors, r.ok ? [] : r.errors);
  t.is(s.version, 1);
  t.is(s.decide(req({ path: '/a/1' })).rule, 'rule-a');
  t.is(events.length, 1);
});

test('policy store - a malformed first policy denies everything as policy.invalid until a good one', (t) => {
  const s = new PolicyStore();
  t.false(s.load('version: 1\ndestinations: [').ok);
  const d = s.decide(req({ path: '/a/1' }));
  t.false(d.allow);
  t.is(d.reason, 'policy.invalid');
  t.true(s.load(A).ok);
  t.true(s.decide(req({ path: '/a/1' })).allow);
});

test('policy store - decisions never fail while policies are swapped under them', async (t) => {
  const s = new PolicyStore();
  s.load(A);
  const byVersion = new Map<number, 'a' | 'b'>([[1, 'a']]);
  let stop = false;
  const decisions: Decision[] = [];
  const deciders = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const path = (i + w) % 2 === 0 ? '/a/x' : '/b/x';
      decisions.push(s.decide(req({ path })));
      if (i % 50 === 0) await tick();
    }
  });
  for (let i = 0; i < 200; i++) {
    const which = i % 3 === 2 ? 'bad' : i % 2 === 0 ? 'b' : 'a';
    const r = s.load(which === 'bad' ? BAD : which === 'a' ? A + `# ${i}\n` : B + `# ${i}\n`);
    if (r.ok) byVersion.set(r.version, which as 'a' | 'b');
    else t.is(which, 'bad');
    await tick();
  }
  stop = true;
  await Promise.all(deciders);
  t.true(decisions.length > 1000);
  for (const d of decisions) {
    // Every decision was made against one whole policy: it allowed exactly what that policy grants.
    t.truthy(d.policy);
    const granted = byVersion.get(d.policy!.version);
    if (!granted) return t.fail(`unknown version ${d.policy!.version}`);
    t.not(d.reason, 'policy.invalid');
    t.not(d.reason, 'policy.empty');
    if (d.allow) t.is(d.rule, `rule-${granted}`);
    else t.is(d.reason, 'policy.route_not_granted');
  }
});

test('policy store - a request in flight keeps the snapshot it started with', async (t) => {
  const s = new PolicyStore();
  s.load(A);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slowPdp: ExternalPdp = { check: async () => (await gate, { allow: true, reason: 'pdp.allow' }) };
  const pending = authorize(req({ path: '/a/1' }), s.current(), { mode: 'both', external: slowPdp });
  s.load(B); // swapped while the external PDP is thinking
  release();
  const d = await pending;
  t.true(d.allow);
  t.is(d.rule, 'rule-a');
  t.is(d.policy?.version, 1);
  t.false(s.decide(req({ path: '/a/1' })).allow);
});

/** Wait for a state, not for an event count: an in-place write may be seen half-done first. */
const until = async (cond: () => boolean, ms = 30_000): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

for (const pollOnly of [false, true]) {
  test(`policy store - watchFile follows edits, renames and bad files (${pollOnly ? 'polling only' : 'fs.watch'})`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-watch-'));
    const file = join(dir, 'policy.yaml');
    await writeFile(file, A);
    const s = new PolicyStore();
    const events: WatchEvent[] = [];
    const clock = new ManualClock(1000);
    const w = s.watchFile(file, { debounceMs: 20, pollMs: pollOnly ? 30 : 200, pollOnly, clock, onReload: (e) => events.push(e) });
    try {
      const first = await w.initial;
      t.like(first, { at: 1000, path: file, result: { ok: true, version: 1 } });
      t.is(s.decide(req({ path: '/a/1' })).rule, 'rule-a');

      const rule = (path: string): string | undefined => s.decide(req({ path })).rule;
      await writeFile(file, B); // in-place edit
      t.true(await until(() => rule('/b/1') === 'rule-b'));
      t.is(s.version, 2);

      await writeFile(file, BAD); // a bad edit: refused, rule-b keeps serving
      const refusedBad = (): boolean =>
        events.some((e) => 'result' in e && !e.result.ok && e.result.errors.some((x) => x.includes('a prefix must end with /')));
      t.true(await until(refusedBad));
      t.is(rule('/b/1'), 'rule-b');

      await writeFile(join(dir, 'next.yaml'), A.replace('rule-a', 'rule-a2')); // atomic replace
      await rename(join(dir, 'next.yaml'), file);
      t.true(await until(() => rule('/a/1') === 'rule-a2'));

      await rm(file); // a vanished file is reported, the policy keeps serving
      t.true(await until(() => events.some((e) => 'readError' in e && e.readError === 'ENOENT')));
      t.is(rule('/a/1'), 'rule-a2');
      t.is(s.version, 3);
    } finally {
      w.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('policy store - watchFile refuses an oversize file without reading it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'policy-watch-'));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, A + '#'.repeat(5000));
  const s = new PolicyStore();
  const w = s.watchFile(file, { maxBytes: 1024, pollMs: 0 });
  try {
    const ev = await w.initial;
    t.true('readError' in ev && /more than the limit of 1024/.test(ev.readError));
    t.is(s.decide(req({ path: '/a/1' })).reason, 'policy.empty');
  } finally {
    w.close();
    await rm(dir, { recursive: true, force: true });
  }
});
