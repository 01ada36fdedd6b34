/** docs/config.md, generated from the schema (`npm run docs:config`); a test keeps them equal. */
import { configSchema } from './config.ts';
import { renderReference } from './schema.ts';

const HEADER = `# Configuration reference

\`wimse-server --config FILE\` reads a YAML file; \`wimse-server\` with no config runs the
embedded defaults below (trust domain \`example.org\`, state in \`./state\`, no NATS).
\`wimse-server validate --config FILE\` checks a file without starting anything and prints every
problem with its field path, for example:

\`\`\`
keys.activateAt: must be greater than keys.prepareAt
sds.registrations[0].workloads[1]: not a valid workload identifier (path_dot_segment): path must not contain . or .. segments
grpc.listn: unknown field
\`\`\`

Rules that apply to every field:
- Unknown fields and duplicate keys are errors.
- Durations are strings: \`500ms\`, \`10s\`, \`5m\`, \`24h\`, \`7d\`, or sums such as \`1h30m\`.
- Relative paths are resolved against the directory of the config file.
- \`wimse-server --grpc-listen ADDR\` and \`--admin-listen ADDR\`, or the environment variables
  \`WIMSE_GRPC_LISTEN\` and \`WIMSE_ADMIN_LISTEN\` (when not empty), replace \`grpc.listen\` and
  \`admin.listen\` and are checked like them; a flag wins over its variable, which wins over the file.

This table is generated from \`src/config/config.ts\` (\`npm run docs:config\`).

| field | type | default | description |
|---|---|---|---|
`;

const FOOTER = `
## Cross-field rules

- \`keys.activateAt\` must be greater than \`keys.prepareAt\`.
- \`grpc.tls\` applies to TCP listeners only.
- Registration node ids are unique; their workloads belong to \`trustDomain\`.
- Federated trust domains are unique and differ from \`trustDomain\`.

## Example

\`\`\`yaml
trustDomain: example.org
stateDir: /var/lib/wimse
keys:
  algorithm: ES256
grpc:
  listen: 0.0.0.0:8443
  tls:
    certFile: /etc/wimse/server.pem
    keyFile: /etc/wimse/server.key
sds:
  registrations:
    - nodeId: payments-sidecar
      workloads: [wimse://example.org/svc/payments]
policy:
  file: /etc/wimse/policy.yaml
cluster:
  servers: [nats://nats-0:4222, nats://nats-1:4222, nats://nats-2:4222]
\`\`\`
`;

export function configReferenceMarkdown(): string {
  return HEADER + renderReference(configSchema).join('\n') + '\n' + FOOTER;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(new URL('../../docs/config.md', import.meta.url), configReferenceMarkdown());
}
