/**
 * Runnable entry for `wimsectl authn check` until it is wired into `wimsectl`:
 *   node --import=tsx src/cli/authn-check-main.ts --bundle FILE [--audience URI]... < request.json
 */
import { MAX_REQUEST_BYTES, runAuthnCheck } from './authn-check.ts';

async function readStdin(limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const stdin = await readStdin(MAX_REQUEST_BYTES);
const out =
  stdin === undefined
    ? { exitCode: 2 as const, stdoutLine: JSON.stringify({ authenticated: false, error: { code: 'input.invalid', detail: `request exceeds ${MAX_REQUEST_BYTES} bytes` } }) }
    : runAuthnCheck(process.argv.slice(2), stdin);
process.stdout.write(`${out.stdoutLine}\n`);
process.exitCode = out.exitCode;
