/**
 * The container image (deploy/Dockerfile), without a container engine: one test checks its
 * steps, the other lays out each stage as its lines say (COPY from the checkout or from the
 * build stage, the build script, a production-only `npm ci`) and runs the runtime stage's
 * entrypoint with plain node, as the image's user when this runs as root.
 */
import test from 'ava';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import YAML from 'yaml';
import { copyArgs, execForm, readDockerfile, type Stage } from '../helpers/dockerfile.ts';
import { ROOT, runProcess, startProcess, type SpawnOptions } from '../helpers/process.ts';

const DOCKERFILE = join(ROOT, 'deploy/Dockerfile');
const stages = readDockerfile(DOCKERFILE);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
const steps = (s: Stage, op: string) => s.steps.filter((x) => x.op === op).map((x) => x.args);
const one = (s: Stage, op: string): string => {
  const all = steps(s, op);
  if (all.length !== 1) throw new Error(`expected one ${op}, found ${all.length}`);
  return all[0]!;
};

test('image - the build stage compiles with the dev dependencies; the runtime stage has dist, bin and proto, no dev dependencies, no tsx', (t) => {
  t.is(stages.length, 2);
  const [build, runtime] = stages as [Stage, Stage];
  t.is(build.name, 'build');
  t.is(build.from, runtime.from);
  t.regex(build.from, /^node:20\b/, 'the base image matches engines.node');
  // Build: a full install (TypeScript is a dev dependency), then the build script.
  const buildRuns = steps(build, 'RUN');
  t.true(buildRuns.some((r) => /^npm ci\b/.test(r) && !r.includes('--omit')));
  t.true(buildRuns.includes('npm run build'));
  const buildCopies = steps(build, 'COPY').flatMap((c) => copyArgs(c).sources);
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) t.true(buildCopies.includes(f), `build stage copies ${f}`);
  // Runtime: production dependencies only, the compiled code, the bins and our protos.
  t.true(steps(runtime, 'RUN').some((r) => /^npm ci\b[^&]*--omit=dev/.test(r)));
  const copies = steps(runtime, 'COPY').map(copyArgs);
  t.deepEqual(
    copies.filter((c) => c.from === 'build'),
    [{ from: 'build', sources: [posix.join(one(build, 'WORKDIR'), 'dist')], dest: './dist' }],
  );
  const local = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
  t.deepEqual(local.sort(), ['bin', 'package-lock.json', 'package.json', 'proto']);
  t.true(steps(runtime, 'ENV').includes('NODE_ENV=production'));
  // A numeric, non-root user: Kubernetes can check runAsNonRoot only against a numeric one.
  const user = /^(\d+):(\d+)$/.exec(one(runtime, 'USER'));
  t.truthy(user);
  t.not(user![1], '0');
  const cp = YAML.parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/control-plane.yaml'), 'utf8'))
    .map((d) => d.toJS())
    .find((d) => d?.kind === 'StatefulSet' && d.metadata?.name === 'wimse-server');
  t.is(cp.spec.template.spec.securityContext.runAsNonRoot, true);
  t.is(String(cp.spec.template.spec.securityContext.fsGroup), user![2]!);
  t.deepEqual(execForm(one(runtime, 'ENTRYPOINT')), ['node', 'bin/wimse-server.mjs']);
  t.deepEqual(execForm(one(runtime, 'CMD')), ['--config', '/etc/wimse/node.yaml']);
  t.is(one(runtime, 'EXPOSE'), '8443 8081');
  // Nothing at run time needs the TypeScript loader.
  t.notRegex(readFileSync(DOCKERFILE, 'utf8'), /tsx/i);
  for (const bin of Object.values((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin))
    t.notRegex(readFileSync(join(ROOT, bin), 'utf8'), /tsx|\.ts['"]/, bin);
  t.truthy(pkg.devDependencies.tsx);
  t.truthy(pkg.devDependencies.typescript);
  t.is(pkg.dependencies.tsx, undefined);
  t.is(pkg.dependencies.typescript, undefined);
});

/** Each stage laid out in a directory: what a container of it would hold. */
interface Laid {
  readonly dirs: Map<string, string>;
  /** Absolute paths outside a stage's WORKDIR (e.g. /var/lib/wimse) live under here. */
  readonly rootfs: string;
  readonly env: Record<string, string>;
  readonly user?: { uid: number; gid: number };
  readonly entrypoint: string[];
  readonly cmd: string[];
}

async function layOut(tmp: string): Promise<Laid> {
  const dirs = new Map<string, string>();
  const workdirs = new Map<string, string>();
  const rootfs = join(tmp, 'rootfs');
  const env: Record<string, string> = {};
  let user: { uid: number; gid: number } | undefined;
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  const run = async (command: string, args: string[], cwd: string) => {
    const r = await runProcess(command, args, { cwd, timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  };
  for (const [i, stage] of stages.entries()) {
    const name = stage.name ?? `stage${i}`;
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    dirs.set(name, dir);
    const last = i === stages.length - 1;
    for (const { op, args } of stage.steps) {
      if (op === 'WORKDIR') workdirs.set(name, args);
      else if (op === 'ENV') for (const kv of args.split(/\s+/)) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
      else if (op === 'COPY') {
        const c = copyArgs(args);
        for (const s of c.sources) {
          let from = join(ROOT, s);
          if (c.from !== undefined) {
            const wd = workdirs.get(c.from)!;
            if (!s.startsWith(`${wd}/`)) throw new Error(`COPY --from=${c.from} ${s}: not under its WORKDIR ${wd}`);
            from = join(dirs.get(c.from)!, s.slice(wd.length + 1));
          }
          const to = c.dest.endsWith('/') ? join(dir, c.dest, basename(s)) : join(dir, c.dest);
          cpSync(from, to, { recursive: true });
        }
      } else if (op === 'RUN') {
        for (const part of args.split('&&').map((x) => x.trim())) {
          const words = part.split(/\s+/);
          if (words[0] === 'npm' && words[1] === 'ci') {
            // The build stage's full install is this checkout's own (same lock file); the
            // runtime's production install runs for real, from npm's cache when it can.
            if (!last) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
            else await run('npm', [...words.slice(1), '--prefer-offline'], dir);
          } else if (part === 'npm cache clean --force') {
            // Only shrinks the image layer; here it would empty this machine's npm cache.
          } else if (part === 'npm run build') await run('npm', ['run', 'build'], dir);
          else if (words[0] === 'mkdir' && words[1] === '-p' && words.length === 3) mkdirSync(join(rootfs, words[2]!), { recursive: true });
          else if (words[0] === 'chown' && words.length === 3) {
            const [u, g] = words[1]!.split(':').map(Number);
            if (process.getuid?.() === 0) chownSync(join(rootfs, words[2]!), u!, g!);
          } else throw new Error(`this test does not know the Dockerfile step RUN ${part}: teach layOut() what it does`);
        }
      } else if (op === 'USER') {
        const [uid, gid] = args.split(':').map(Number);
        user = { uid: uid!, gid: gid! };
      } else if (op === 'ENTRYPOINT') entrypoint = execForm(args);
      else if (op === 'CMD') cmd = execForm(args);
      else if (op !== 'EXPOSE') throw new Error(`this test does not know the Dockerfile instruction ${op}`);
    }
  }
  return { dirs, rootfs, env, ...(user ? { user } : {}), entrypoint, cmd };
}

test('image - the runtime stage, laid out as the Dockerfile says, runs both CLIs and a node with plain node', async (t) => {
  t.timeout(600_000);
  const tmp = mkdtempSync(join(tmpdir(), 'wimse-image-'));
  chmodSync(tmp, 0o755); // the image's user must be able to reach the app
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const laid = await layOut(tmp);
  const app = laid.dirs.get(`stage${stages.length - 1}`)!;
  // What the runtime holds: no TypeScript, no tsx, no sources; the compiled code and protos.
  for (const absent of ['node_modules/tsx', 'node_modules/typescript', 'node_modules/ava', 'src']) t.false(existsSync(join(app, absent)), absent);
  for (const present of ['dist/cli/wimse-server.js', 'dist/cli/wimsectl.js', 'proto/wimse/admin/v1/admin.proto', 'node_modules/@grpc/grpc-js-xds/deps/envoy-api']) t.true(existsSync(join(app, present)), present);

  // As in the container: the image's environment and user, nothing inherited that loads TypeScript.
  const asImage: SpawnOptions = {
    cwd: app,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, ...laid.env },
    ...(laid.user && process.getuid?.() === 0 ? laid.user : {}),
  };
  const node = (cmd: string) => (cmd === 'node' ? process.execPath : cmd);
  for (const bin of ['wimsectl', 'wimse-server']) {
    const v = await runProcess(process.execPath, [`bin/${bin}.mjs`, '--version'], asImage);
    t.is(v.code, 0, v.stderr);
    t.is(v.stdout, `${bin} ${pkg.version}\n`);
  }

  // The config the CMD names, with loopback listeners on free ports and the state directory
  // the Dockerfile prepares for the user.
  const cmd = laid.cmd.map((a) => (a.startsWith('/') ? join(laid.rootfs, a) : a));
  const configFile = cmd[cmd.indexOf('--config') + 1]!;
  const stateDir = join(laid.rootfs, '/var/lib/wimse');
  t.true(existsSync(stateDir), 'the Dockerfile prepares /var/lib/wimse');
  mkdirSync(dirname(configFile), { recursive: true });
  writeFileSync(configFile, `stateDir: ${stateDir}\ngrpc:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nlogging:\n  level: warn\n`);
  const [entry, ...entryArgs] = laid.entrypoint;
  const valid = await runProcess(node(entry!), [...entryArgs, 'validate', '--config', configFile], asImage);
  t.is(valid.code, 0, valid.stderr);
  t.regex(valid.stdout, /valid \(trust domain example\.org;/);

  const { child, stdout } = await startProcess(node(entry!), [...entryArgs, ...cmd], /admin HTTP: (http:\S+)/, { ...asImage, timeoutMs: 60_000 });
  t.teardown(() => child.kill('SIGKILL'));
  const admin = /admin HTTP: (http:\S+)/.exec(stdout())![1]!;
  const grpcAddress = /admin API\): (\S+)/.exec(stdout())![1]!;
  t.is((await fetch(`${admin}/healthz`)).status, 200);
  // wimsectl with plain node against it: our admin proto and Envoy's protos load from the app.
  const status = await runProcess(process.execPath, ['bin/wimsectl.mjs', '--server', grpcAddress, '--token-file', join(stateDir, 'admin-token'), '-o', 'json', 'bundle', 'status'], asImage);
  t.is(status.code, 0, status.stderr);
  t.is(JSON.parse(status.stdout).nodes[0].trustDomains[0].trustDomain, 'example.org');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});
