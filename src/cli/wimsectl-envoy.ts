/**
 * `wimsectl envoy bootstrap`: an Envoy sidecar bootstrap (src/envoy/bootstrap.ts) for a node id.
 *
 * The node token must be in the bootstrap (Envoy's `initial_metadata` is a literal). By default
 * it is the placeholder REPLACE_WITH_NODE_TOKEN (or `--token-placeholder`) for the installer to
 * substitute. A real token (`--token-create` issues one through the admin API,
 * `--node-token-file` reads one) is written only to `--out FILE` (mode 0600), or to stdout
 * when `--token-to-stdout` says so. With `--control-plane-cert FILE --control-plane-key FILE`
 * Envoy presents that client certificate to the control plane instead (for a node with
 * `grpc.tls.nodeIdFromCertificate`), and the bootstrap carries no token. Envoy reads it at start;
 * with `--control-plane-cert-sds FILE` it takes it through that file-based SDS source instead and
 * reloads it when the certificate's directory is swapped: the command then writes two files, the
 * bootstrap (`--out`) and the SDS file (mode 0644, replaced atomically so that a running Envoy
 * reloads it).
 */
import { closeSync, existsSync, fchmodSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, posix, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseDuration } from '../config/schema.ts';
import type { BootstrapOptions } from '../envoy/bootstrap.ts';
import { CliError, UsageError, bool, flag, noPositionals, required, value, type Command, type Ctx } from './wimsectl-args.ts';
import { ttlSeconds } from './wimsectl-registry.ts';

const int = (c: Ctx, name: string, fallback: number | undefined): number | undefined => {
  const v = flag(c.args, name);
  if (v === undefined) return fallback;
  if (!/^\d{1,5}$/.test(v)) throw new UsageError(`${name} ${JSON.stringify(v)} is not a port number`);
  return Number(v);
};

async function nodeToken(c: Ctx, nodeId: string, placeholder: string): Promise<{ token: string; real: boolean; note?: string }> {
  const sources = ['--token-create', '--node-token-file', '--token-placeholder'].filter((f) => flag(c.args, f) !== undefined);
  if (sources.length > 1) throw new UsageError(`${sources.join(' and ')}: give one source of the node token`);
  if (flag(c.args, '--ttl') !== undefined && flag(c.args, '--token-create') === undefined) throw new UsageError('--ttl goes with --token-create');
  if (flag(c.args, '--token-create') !== undefined) {
    const r = (await c.call('CreateNodeToken', { node_id: nodeId, ttl_seconds: ttlSeconds(flag(c.args, '--ttl')) })) as { token: string; token_id: string };
    return { token: r.token, real: true, note: `node token ${r.token_id} issued for ${nodeId}` };
  }
  const file = flag(c.args, '--node-token-file');
  if (file !== undefined) {
    const token = c.readInput(file, '--node-token-file').trim();
    if (!token) throw new CliError(`${file} is empty. Put the node token from wimsectl token create in it`, 2);
    return { token, real: true };
  }
  return { token: flag(c.args, '--token-placeholder') ?? placeholder, real: false };
}

/** Create or truncate FILE with mode 0600 (also when it existed with a wider mode), then write. */
function writePrivate(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'w', 0o600);
  } catch (e) {
    throw new CliError(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Check --out`, 2);
  }
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replace FILE atomically with `text`, mode 0644: write a temporary file beside it, then rename
 * it over FILE. The rename is the move Envoy watches for in the SDS file's directory, and Envoy
 * never reads half a file.
 */
function writePublicAtomically(path: string, text: string, flagName: string): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const failed = (e: unknown): CliError => new CliError(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Check ${flagName}`, 2);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o644);
  } catch (e) {
    throw failed(e);
  }
  try {
    try {
      fchmodSync(fd, 0o644);
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw failed(e);
  }
}

/** A file is to be written at `path`: its directory must exist (checked before anything is written). */
function directoryOf(path: string, flagName: string): void {
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${flagName} ${path}: directory ${dir} does not exist`);
}

/** `--control-plane-max-connection-duration`: whole seconds, from `3600` or `1h`, `90m`. */
function connectionSeconds(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : parseDuration(v);
  if (ms === undefined || ms % 1000 !== 0) throw new UsageError(`--control-plane-max-connection-duration ${JSON.stringify(v)} is not a duration; use seconds or 30m, 2h`);
  return ms / 1000;
}

export const envoyCommands: Record<string, Command> = {
  bootstrap: {
    usage:
      'envoy bootstrap --node-id ID --workload ID [--role callee|caller] [--audience AUD] [--upstream-host HOST --upstream-port PORT --upstream-workload ID] ' +
      '[--control-plane HOST:PORT|unix:/path] [--control-plane-sni NAME] [--control-plane-ca FILE] [--listener-port PORT] [--app-port PORT] [--admin-port PORT] [--node-cluster NAME] ' +
      '[--token-placeholder TEXT | --node-token-file FILE | --token-create [--ttl DURATION] | --control-plane-cert FILE --control-plane-key FILE ' +
      '[--control-plane-cert-sds FILE [--control-plane-cert-sds-out FILE] [--control-plane-max-connection-duration DURATION]]] [--format yaml|json] [--out FILE [--token-to-stdout]]',
    summary: 'write an Envoy sidecar bootstrap (callee: mTLS + ext_authz in front of an app; caller: mTLS to one upstream) wired to this control plane',
    flags: {
      '--role': value('callee|caller', 'callee (default): mTLS listener, ext_authz, local app; caller: loopback listener, mTLS to one upstream'),
      '--node-id': value('ID', 'the Envoy node.id (its registration entry and node token name it)'),
      '--node-cluster': value('NAME', "node.cluster (default: the workload identifier's last segment)"),
      '--workload': value('ID', "the workload behind the sidecar; the callee's ext_authz destination_workload"),
      '--audience': value('AUD', 'callee: the audience a WPT or HTTP signature to it must name'),
      '--upstream-host': value('HOST', 'caller: the callee sidecar it calls'),
      '--upstream-port': value('PORT', "caller: the callee sidecar's port (default 15006)"),
      '--upstream-workload': value('ID', 'caller: the exact URI SAN the upstream certificate must carry'),
      '--control-plane': value('HOST:PORT|unix:/path', 'this control plane (default 127.0.0.1:8443): TCP with TLS, or a Unix socket without'),
      '--control-plane-sni': value('NAME', "SNI, required exactly as a DNS SAN of the control plane's certificate (default: the HOST)"),
      '--control-plane-ca': value('FILE', "PEM roots for the control plane's certificate, on the Envoy host"),
      '--listener-port': value('PORT', "the inbound mTLS port (callee, 15006), or the app's loopback port (caller, 15001)"),
      '--app-port': value('PORT', 'callee: the local app on 127.0.0.1 (default 8080)'),
      '--admin-port': value('PORT', "Envoy's admin listener on 127.0.0.1 (default 9901 callee, 9902 caller)"),
      '--token-placeholder': value('TEXT', 'written where the node token goes, for an installer to substitute (default REPLACE_WITH_NODE_TOKEN)'),
      '--node-token-file': value('FILE', 'embed the node token read from FILE'),
      '--token-create': bool('issue a node token for --node-id through the admin API and embed it'),
      '--ttl': value('DURATION', 'with --token-create: its lifetime (seconds, or 90m, 24h, 7d)'),
      '--format': value('yaml|json', 'the bootstrap format (default yaml; json with -o json)'),
      '--out': value('FILE', 'write it there, mode 0600 (default: stdout)'),
      '--token-to-stdout': bool('allow a bootstrap with a real node token on stdout'),
      '--control-plane-cert': value('FILE', 'instead of a node token: the PEM client certificate chain Envoy presents to the control plane, on the Envoy host; the node maps it to --node-id (grpc.tls.nodeIdFromCertificate)'),
      '--control-plane-key': value('FILE', 'with --control-plane-cert: its PEM private key, on the Envoy host'),
      '--control-plane-cert-sds': value(
        'FILE',
        'with --control-plane-cert/--control-plane-key: Envoy reads them through this file-based SDS source (a path on the Envoy host ending in .yaml or .json) and reloads them, without a restart, when their directory is swapped; written with the bootstrap, which needs --out',
      ),
      '--control-plane-cert-sds-out': value('FILE', 'write the SDS file there instead of at the --control-plane-cert-sds path (which Envoy reads)'),
      '--control-plane-max-connection-duration': value('DURATION', 'with --control-plane-cert-sds: connections to the control plane last at most this long, so every one uses the renewed certificate within it (default 1h)'),
    },
    async run(c) {
      // Loaded here: the other commands start without the bootstrap builder and yaml.
      const { buildBootstrap, controlPlaneCertSds, DEFAULT_MAX_CONNECTION_SECONDS, defaultBootstrapOptions, renderBootstrap, sdsFileFormat, TOKEN_PLACEHOLDER } = await import('../envoy/bootstrap.ts');
      noPositionals(c.args);
      const role = flag(c.args, '--role') ?? 'callee';
      if (role !== 'callee' && role !== 'caller') throw new UsageError(`--role must be callee or caller (got ${JSON.stringify(role)})`);
      const format = flag(c.args, '--format') ?? (c.output === 'json' ? 'json' : 'yaml');
      if (format !== 'yaml' && format !== 'json') throw new UsageError('--format must be yaml or json');
      const out = flag(c.args, '--out');
      const d = defaultBootstrapOptions(role);
      const nodeId = required(c.args, '--node-id', "the Envoy node id: the one its registration entry and node token name");
      const workload = required(c.args, '--workload', role === 'callee' ? 'the workload identifier this sidecar fronts' : 'the workload identifier of the app behind this sidecar');
      const upstreamHost = flag(c.args, '--upstream-host');
      const upstreamWorkload = flag(c.args, '--upstream-workload');
      if (role === 'callee') {
        for (const f of ['--upstream-host', '--upstream-port', '--upstream-workload']) if (flag(c.args, f) !== undefined) throw new UsageError(`${f} is for --role caller`);
        required(c.args, '--audience', 'the audience a WPT or HTTP signature to this workload must name');
      } else {
        for (const f of ['--audience', '--app-port']) if (flag(c.args, f) !== undefined) throw new UsageError(`${f} is for --role callee`);
        if (!upstreamHost || !upstreamWorkload) throw new UsageError('--role caller needs --upstream-host and --upstream-workload (the sidecar it calls and the identifier its certificate must carry)');
      }
      const certFile = flag(c.args, '--control-plane-cert');
      const keyFile = flag(c.args, '--control-plane-key');
      if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--control-plane-cert and --control-plane-key go together');
      const sdsFile = flag(c.args, '--control-plane-cert-sds');
      if (sdsFile !== undefined && certFile === undefined)
        throw new UsageError('--control-plane-cert-sds needs --control-plane-cert and --control-plane-key (the certificate and key files the SDS file names)');
      for (const f of ['--control-plane-cert-sds-out', '--control-plane-max-connection-duration'])
        if (flag(c.args, f) !== undefined && sdsFile === undefined) throw new UsageError(`${f} goes with --control-plane-cert-sds`);
      const sds = sdsFile === undefined ? undefined : { file: sdsFile, maxConnectionSeconds: connectionSeconds(flag(c.args, '--control-plane-max-connection-duration')) };
      const clientCert = certFile !== undefined && keyFile !== undefined ? { certFile, keyFile, sds } : undefined;
      if (clientCert) {
        const tokenFlags = ['--token-create', '--node-token-file', '--token-placeholder', '--ttl', '--token-to-stdout'].filter((f) => flag(c.args, f) !== undefined);
        if (tokenFlags.length) throw new UsageError(`${tokenFlags.join(' and ')}: not with --control-plane-cert (the client certificate replaces the node token)`);
      }
      // Check the options before a token is issued for them.
      const opts = (nodeTokenValue: string | undefined): BootstrapOptions => ({
        role,
        nodeId,
        nodeCluster: flag(c.args, '--node-cluster'),
        workload,
        audience: flag(c.args, '--audience'),
        controlPlane: flag(c.args, '--control-plane') ?? d.controlPlane,
        controlPlaneSni: flag(c.args, '--control-plane-sni') ?? (flag(c.args, '--control-plane') === undefined ? d.controlPlaneSni : undefined),
        controlPlaneCaFile: flag(c.args, '--control-plane-ca') ?? d.controlPlaneCaFile,
        adminPort: int(c, '--admin-port', d.adminPort)!,
        listenerPort: int(c, '--listener-port', d.listenerPort)!,
        appPort: int(c, '--app-port', d.appPort),
        upstream: role === 'caller' ? { host: upstreamHost!, port: int(c, '--upstream-port', d.upstream!.port)!, workload: upstreamWorkload! } : undefined,
        nodeToken: nodeTokenValue,
        controlPlaneClientCert: clientCert,
      });
      const dry = buildBootstrap(opts(clientCert ? undefined : TOKEN_PLACEHOLDER));
      if (!dry.ok) throw new UsageError(dry.errors.join('; '));
      if (clientCert?.sds) {
        if (out === undefined) throw new UsageError('--control-plane-cert-sds writes two files, the bootstrap and the SDS file: give --out FILE for the bootstrap');
        const sdsOutFlag = flag(c.args, '--control-plane-cert-sds-out') === undefined ? '--control-plane-cert-sds' : '--control-plane-cert-sds-out';
        const sdsOut = flag(c.args, '--control-plane-cert-sds-out') ?? clientCert.sds.file;
        directoryOf(sdsOut, sdsOutFlag);
        directoryOf(out, '--out');
        const sdsDoc = controlPlaneCertSds(opts(undefined));
        if (!sdsDoc.ok) throw new UsageError(sdsDoc.errors.join('; '));
        const watched = posix.dirname(clientCert.certFile);
        const header = [
          `Envoy bootstrap (${role}) for node ${nodeId}, written by wimsectl envoy bootstrap.`,
          `It presents the client certificate that ${clientCert.sds.file} names to the control plane, whose grpc.tls.nodeIdFromCertificate must map it to ${nodeId}.`,
          `Envoy reloads ${clientCert.certFile} and ${clientCert.keyFile} without a restart when an entry of ${watched} is moved:`,
          'renew them in a new directory and swap a symlink (docs/envoy.md); never rewrite them in place.',
          `A connection to the control plane lasts at most ${clientCert.sds.maxConnectionSeconds ?? DEFAULT_MAX_CONNECTION_SECONDS}s: renew the certificate while more than that is left of it.`,
        ].join('\n');
        const sdsHeader = [
          `File-based SDS source of the control_plane cluster's client certificate (node ${nodeId}), written by wimsectl envoy bootstrap.`,
          `The bootstrap reads it as ${clientCert.sds.file}; it holds paths only. Envoy reloads the files it names when an entry of ${watched} is moved.`,
        ].join('\n');
        const sdsFormat = sdsFileFormat(clientCert.sds.file)!;
        // The SDS file first: Envoy needs it to exist when it loads the bootstrap.
        writePublicAtomically(sdsOut, renderBootstrap(sdsDoc.value, sdsFormat, sdsFormat === 'yaml' ? sdsHeader : undefined), sdsOutFlag);
        writePrivate(out, renderBootstrap(dry.value, format, format === 'yaml' ? header : undefined));
        const where = sdsOut === clientCert.sds.file ? '' : `, for Envoy at ${clientCert.sds.file}`;
        c.show(
          { written: out, sdsFile: sdsOut, role, nodeId, token: 'none', clientCertificate: clientCert.certFile, reload: true },
          () => `wrote ${out} (mode 0600) and ${sdsOut} (mode 0644${where})\n`,
        );
        return 0;
      }
      if (clientCert) {
        const header = [
          `Envoy bootstrap (${role}) for node ${nodeId}, written by wimsectl envoy bootstrap.`,
          `It presents the client certificate ${clientCert.certFile} to the control plane, whose grpc.tls.nodeIdFromCertificate must map it to ${nodeId}.`,
          'Envoy reads that certificate at start: restart Envoy (hot restart) after renewing it, before the old one expires.',
        ].join('\n');
        const text = renderBootstrap(dry.value, format, format === 'yaml' ? header : undefined);
        if (out === undefined) c.out(text);
        else {
          writePrivate(out, text);
          c.show({ written: out, role, nodeId, token: 'none', clientCertificate: clientCert.certFile }, () => `wrote ${out} (mode 0600)\n`);
        }
        return 0;
      }
      const real = flag(c.args, '--token-create') !== undefined || flag(c.args, '--node-token-file') !== undefined;
      if (real && out === undefined && flag(c.args, '--token-to-stdout') === undefined)
        throw new UsageError('the bootstrap would carry a real node token: write it with --out FILE (mode 0600), or pass --token-to-stdout');
      const token = await nodeToken(c, nodeId, TOKEN_PLACEHOLDER);
      const built = buildBootstrap(opts(token.token));
      if (!built.ok) throw new UsageError(built.errors.join('; '));
      const header = [
        `Envoy bootstrap (${role}) for node ${nodeId}, written by wimsectl envoy bootstrap.`,
        token.real ? 'It carries a node token: keep this file mode 0600.' : `Replace ${token.token} with the node token (wimsectl token create --node-id ${nodeId}).`,
      ].join('\n');
      const text = renderBootstrap(built.value, format, format === 'yaml' ? header : undefined);
      if (out === undefined) {
        c.out(text);
        return 0;
      }
      writePrivate(out, text);
      c.show({ written: out, role, nodeId, token: token.real ? 'embedded' : 'placeholder' }, () => `wrote ${out} (mode 0600)${token.note ? `; ${token.note}` : ''}\n`);
      return 0;
    },
  },
};
