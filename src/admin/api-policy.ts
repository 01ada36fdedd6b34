/**
 * Admin handlers for route policy. Applied policy is validated first: a refused one is reported
 * with every error and its field path and the current one keeps serving. An accepted one is
 * written atomically to the policy file (the configured one, whose watcher then sees the same
 * content, else `<stateDir>/policy.yaml`, loaded at the next start) and swapped in.
 */
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import YAML from 'yaml';
import { AUTHN_METHODS, type AuthnMethod } from '../policy/model.ts';
import { parsePolicyText } from '../policy/load.ts';
import { policyTest } from '../policy/explain.ts';
import type { AdminApiDeps } from './api-deps.ts';
import { AdminError, invalidArgument, notFound } from './api-errors.ts';
import { SerialWriter } from './api-state.ts';
import type { Handler } from './api.ts';

const doc = (value: unknown) => ({ text: `${JSON.stringify(value, null, 2)}\n` });

export function policyHandlers(deps: AdminApiDeps, exclusive: <T>(fn: () => Promise<T>) => Promise<T>): Record<string, Handler> {
  const file = new SerialWriter(deps.policyFile);
  return {
    ApplyPolicy: (req: { text: string }) =>
      exclusive(async () => {
        if (!req.text) throw invalidArgument('text', 'is required: the policy YAML (docs/policy.md)');
        const checked = parsePolicyText(req.text);
        if (!checked.ok)
          throw new AdminError(
            grpc.status.INVALID_ARGUMENT,
            `the policy was refused and the current one keeps serving:\n${checked.errors.map((e) => `  ${e}`).join('\n')}\nFix these and apply again (wimsectl policy test --file checks a file offline)`,
          );
        const before = deps.policy.current().digest;
        try {
          await file.write(req.text.endsWith('\n') ? req.text : `${req.text}\n`);
        } catch (e) {
          throw new AdminError(
            grpc.status.FAILED_PRECONDITION,
            `cannot write the policy file ${deps.policyFile} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Make it writable by the node, or edit it directly`,
          );
        }
        const r = deps.policy.load(req.text, deps.policyFile);
        if (!r.ok) throw new AdminError(grpc.status.INVALID_ARGUMENT, `the policy was refused:\n${r.errors.map((e) => `  ${e}`).join('\n')}`);
        // The file's watcher may have loaded what was just written before this load did (a
        // slow disk): the apply changed the policy all the same.
        return doc({ version: r.version, digest: r.digest, changed: r.digest !== before, file: deps.policyFile });
      }),

    async GetPolicy() {
      const cur = deps.policy.current();
      let text = await readFile(deps.policyFile, 'utf8').catch(() => undefined);
      if (text === undefined && cur.policy) text = YAML.stringify(cur.policy);
      if (text === undefined) throw notFound('no policy is loaded (every request is denied). Apply one with wimsectl policy apply FILE');
      return doc({ text, file: deps.policyFile, version: cur.version, digest: cur.digest, status: cur.status, lastErrors: deps.policy.lastErrors });
    },

    async TestPolicy(req: { from: string; to: string; method: string; path: string; via: string }) {
      for (const f of ['from', 'to', 'method', 'path'] as const) if (!req[f]) throw invalidArgument(f, 'is required');
      const via = (req.via || 'mtls') as AuthnMethod;
      if (!AUTHN_METHODS.includes(via)) throw invalidArgument('via', `must be one of ${AUTHN_METHODS.join(', ')}`);
      const e = policyTest(deps.policy.current(), { from: req.from, to: req.to, method: req.method, path: req.path, via });
      return doc(e);
    },
  };
}
