/**
 * The CheckRequest size limits agree with the gRPC server's receive limit: a body up to
 * MAX_BODY_BYTES, with header fields at their own limit and an mTLS peer chain, reaches the
 * handler; a larger body that the transport still receives is *denied* (400), never an error.
 */
import test from 'ava';
import { MAX_BODY_BYTES, MAX_CHECK_REQUEST_BYTES, MAX_HEADERS_BYTES } from '../../src/envoy/check-request.ts';
import { leaf } from '../authn/pki.ts';
import { EXT, WEB, envoyRequest, expectAllowed, expectDenied, nodeWit, startAdversarialNode, wptCall, wptFor, type Ctx } from './fixtures.ts';

let ctx: Ctx;
test.before(async () => {
  ctx = await startAdversarialNode();
});
test.after.always(async () => {
  await ctx?.close();
});

test('extauthz limits - the body limit leaves room for the rest of the message under the gRPC limit', (t) => {
  // Headers (counted twice: headers and header_map), path, a URL-encoded 64 KiB chain, framing.
  t.true(MAX_BODY_BYTES + 2 * MAX_HEADERS_BYTES + 16 * 1024 + 3 * 64 * 1024 + 64 * 1024 < MAX_CHECK_REQUEST_BYTES);
});

test('extauthz limits - a body at the limit with large headers and a peer chain is received and checked', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  const filler: [string, string] = ['x-filler', 'f'.repeat(MAX_HEADERS_BYTES - 8 * 1024)];
  const req = wptCall(web.token, wptFor(web), { method: 'POST', body: Buffer.alloc(MAX_BODY_BYTES, 0x61), headers: [filler] }) as any;
  expectAllowed(t, await ctx.check(req), WEB, 'wpt');
  // The same with the node's mTLS peer chain (URL-encoded PEM, as Envoy sends it).
  const peerPem = await leaf(ctx.partner.root, Date.now(), { uris: ['spiffe://partner.example/ns/ext/sa/proxy'] });
  const withPeer = wptCall(web.token, wptFor(web), { method: 'POST', body: Buffer.alloc(MAX_BODY_BYTES, 0x61), headers: [filler] }) as any;
  withPeer.attributes.source = { principal: 'spiffe://partner.example/ns/ext/sa/proxy', certificate: encodeURIComponent(peerPem) };
  const res = await ctx.check(withPeer);
  expectAllowed(t, res, WEB, 'wpt');
});

test('extauthz limits - a body over the limit is denied 400, not a transport error', async (t) => {
  const web = await nodeWit(ctx.node, WEB);
  for (const size of [MAX_BODY_BYTES + 1, MAX_CHECK_REQUEST_BYTES - 64 * 1024]) {
    const req = wptCall(web.token, wptFor(web), { method: 'POST', body: Buffer.alloc(size, 0x61) });
    expectDenied(t, await ctx.check(req), 400, 'request.malformed');
  }
  // Past the gRPC limit: the transport refuses it (Envoy's status_on_error), never OK.
  const huge = envoyRequest({ method: 'POST', body: Buffer.alloc(MAX_CHECK_REQUEST_BYTES + 1, 0x61), contextExtensions: EXT });
  const err = await t.throwsAsync(ctx.check(huge));
  t.is((err as any).code, 8, 'RESOURCE_EXHAUSTED');
});
