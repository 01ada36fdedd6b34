import test from 'ava';
import { applyRequest, newStreamState } from '../../src/envoy/sds-stream-state.ts';

const node = { id: 'n1', cluster: 'c', user_agent_name: 'envoy', user_agent_build_version: { version: { major_number: 1, minor_number: 36, patch: 2 } } };

test('sds state - the first request subscribes and is answered whatever version and nonce it carries', (t) => {
  const s = newStreamState('n1');
  const v = applyRequest(s, { node, resource_names: ['default', 'ALL', 'default'], version_info: 'old', response_nonce: 'old-nonce' });
  t.deepEqual(v, { kind: 'init', send: ['default', 'ALL'] });
  t.deepEqual([...s.subscribed], ['default', 'ALL']);
  t.deepEqual(s.node, { id: 'n1', cluster: 'c', userAgentName: 'envoy', userAgentVersion: '1.36.2' });
});

test('sds state - later requests: stale nonce dropped, ACK with added and removed names, node kept', (t) => {
  const s = newStreamState('n1');
  applyRequest(s, { node, resource_names: ['default'] });
  s.lastNonceSent = 'a';
  s.sent.set('default', 'd1');
  t.deepEqual(applyRequest(s, { resource_names: ['default', 'ALL'], response_nonce: 'zzz' }), { kind: 'stale' });
  t.deepEqual([...s.subscribed], ['default'], 'a stale request changes nothing');
  const v = applyRequest(s, { resource_names: ['ALL'], response_nonce: 'a', version_info: 'v1' });
  t.deepEqual(v, { kind: 'ack', send: ['ALL'], removed: ['default'] });
  t.is(s.lastAckedVersion, 'v1');
  t.false(s.sent.has('default'));
  t.is(s.node?.id, 'n1');
});

test('sds state - a NACK is counted, keeps what was sent, and still sends added names', (t) => {
  const s = newStreamState('n1');
  applyRequest(s, { node, resource_names: ['ALL'] });
  s.lastNonceSent = 'a';
  s.sent.set('ALL', 'd1');
  const v = applyRequest(s, { resource_names: ['ALL', 'ROOTCA'], response_nonce: 'a', version_info: '', error_detail: { code: 13, message: 'bad' } });
  t.deepEqual(v, { kind: 'nack', send: ['ROOTCA'], removed: [], message: 'bad' });
  t.is(s.nacks, 1);
  t.is(s.sent.get('ALL'), 'd1');
  t.is(s.lastAckedVersion, '');
});

test('sds state - an empty name list after a subscription unsubscribes everything', (t) => {
  const s = newStreamState('n1');
  applyRequest(s, { node, resource_names: ['ALL', 'default'] });
  const v = applyRequest(s, { resource_names: [], response_nonce: '' });
  t.deepEqual(v, { kind: 'ack', send: [], removed: ['ALL', 'default'] });
  t.is(s.subscribed.size, 0);
});
