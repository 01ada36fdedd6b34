/** `wimsectl policy ...` (against the node, or offline on a file) and `wimsectl authn check` (offline). */
import { AUTHN_METHODS, type AuthnMethod } from '../policy/model.ts';
import { CliError, UsageError, flag, noPositionals, required, value, type Command } from './wimsectl-args.ts';

const doc = (d: { text: string }): any => JSON.parse(d.text);

export const policyCommands: Record<string, Command> = {
  apply: {
    usage: 'policy apply FILE|-',
    summary: 'validate a policy and make it the one the node serves (refused: every error, nothing changes)',
    flags: { '--file': value('FILE|-', 'the policy file (or as an argument); - reads stdin') },
    async run(c) {
      const file = flag(c.args, '--file') ?? c.args.positionals[0];
      if (!file) throw new UsageError('the policy file is required (policy apply FILE, or - for stdin)');
      noPositionals(c.args, flag(c.args, '--file') ? 0 : 1);
      const r = doc(await c.call('ApplyPolicy', { text: c.readInput(file, 'the policy file') }));
      c.show(r, () => `policy ${r.changed ? 'applied' : 'unchanged'}: version ${r.version}, ${r.digest} (written to ${r.file})\n`);
      return 0;
    },
  },
  show: {
    usage: 'policy show',
    summary: 'the policy the node serves, with its version, digest and status',
    flags: {},
    async run(c) {
      noPositionals(c.args);
      const p = doc(await c.call('GetPolicy'));
      c.show(p, () => {
        const head = [`# file: ${p.file}`, `# version ${p.version}, ${p.digest || 'no digest'}, status ${p.status}`];
        for (const e of p.lastErrors as string[]) head.push(`# last refused change: ${e}`);
        return `${head.join('\n')}\n${p.text}`;
      });
      return 0;
    },
  },
  test: {
    usage: 'policy test --from ID --to ID --method M --path P [--via mtls|wpt|httpsig] [--file POLICY_FILE]',
    summary: 'explain the decision for one request: against the node, or offline against a file',
    flags: {
      '--from': value('ID', 'the caller workload identifier'),
      '--to': value('ID', 'the destination workload identifier'),
      '--method': value('M', 'the HTTP method, e.g. GET'),
      '--path': value('P', 'the request path, e.g. /orders/1'),
      '--via': value('mtls|wpt|httpsig', 'how the caller authenticated (default mtls)'),
      '--file': value('POLICY_FILE', 'decide offline against this policy file: no node, no token'),
    },
    async run(c) {
      noPositionals(c.args);
      const args = {
        from: required(c.args, '--from', 'the caller workload identifier'),
        to: required(c.args, '--to', 'the destination workload identifier'),
        method: required(c.args, '--method', 'the HTTP method, e.g. GET'),
        path: required(c.args, '--path', 'the request path, e.g. /orders/1'),
        via: (flag(c.args, '--via') ?? 'mtls') as AuthnMethod,
      };
      if (!AUTHN_METHODS.includes(args.via)) throw new UsageError(`--via must be one of ${AUTHN_METHODS.join(', ')}`);
      const file = flag(c.args, '--file');
      let e: any;
      if (file !== undefined) {
        // Offline only: the policy engine loads for this alone.
        const [{ parsePolicyText }, { compileChecked }, { policyTest }] = await Promise.all([import('../policy/load.ts'), import('../policy/compile.ts'), import('../policy/explain.ts')]);
        const checked = parsePolicyText(c.readInput(file, '--file'));
        if (!checked.ok) throw new CliError(`${file} is not a valid policy:\n${checked.errors.map((x) => `  ${x}`).join('\n')}\nFix these errors (docs/policy.md)`, 1);
        e = policyTest(compileChecked(checked.value, 1), args);
      } else e = doc(await c.call('TestPolicy', args));
      c.show(e, () => `${e.text}\n`);
      return e.decision.allow ? 0 : 1;
    },
  },
};
