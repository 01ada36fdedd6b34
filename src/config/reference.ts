/** docs/config.md, generated from the schema (`npm run docs:config`); a test keeps them equal. */
import { configSchema } from './config.ts';
import { renderReference } from './schema.ts';

const HEADER = `# Configuration reference

\`wimse-server --config FILE\` reads a YAML file; \`wimse-server\` with no config runs the
embedded defaults below (trust domain \`example.org\`, state in \`./state\`, no NATS).
\`wimse-server validate --config FILE\` checks a file without starting anything and prints every
problem with its field path (the files it names are read too, and the policy file is checked as
the node would load it), for example:

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
- Every value has a range (the last sentence of its description): a value the node could not
  honour is refused by \`validate\` and at start, never cut down silently. Durations that drive a
  timer stop at \`24d\` (Node timers hold at most 2^31 − 1 ms); key lifetimes stop at \`36500d\`
  (X.509 dates end in year 9999).
- Files the config names (TLS certificates and keys, federation bundles, token files, NATS
  credentials), listen hosts and the state directory (its key journal and what the admin API
  stored there) are checked too: \`validate\` reads them as the node would at start, without
  writing anything, and the start runs the same checks before it creates or writes anything.

This table is generated from \`src/config/config.ts\` (\`npm run docs:config\`).

| field | type | default | description |
|---|---|---|---|
`;

const FOOTER = `
## Cross-field rules

- \`keys.activateAt\` must be greater than \`keys.prepareAt\`.
- The key schedule must be one the rotator can keep. Each key's life has a preparation window
  (\`keys.ttl × (activateAt − prepareAt)\`, 8h by default) and an activation window
  (\`keys.ttl × (1 − activateAt)\`, 4h by default):
  - \`keys.rotationInterval\` is at most half of the shorter window;
  - \`credentials.wicTtl\` and \`credentials.witTtl\` are at most the activation window, the least
    life an active key has left (SPIRE's rule: \`ca_ttl\` at least six times the SVID TTL);
  - \`cluster.activationTimeout\` plus \`keys.rotationInterval\` is less than the activation window,
    so the active key cannot expire while its successor waits for the other nodes.
- \`grpc.tls\` applies to TCP listeners only. \`grpc.tls.clientCaFile\` and \`requireClientCert: true\`
  go together, and \`grpc.tls.nodeIdFromCertificate\` needs both: only a client certificate the
  listener verified may name a node.
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
