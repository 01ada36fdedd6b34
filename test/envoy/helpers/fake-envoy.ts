/**
 * A grpc-js SDS client that behaves as Envoy does (Envoy's xDS protocol): first request with
 * node + names + empty version/nonce, ACK = nonce + version, NACK = last accepted version +
 * nonce + error_detail{code 13}, node only on the first message. Plus a server harness on
 * loopback.
 */
import * as grpc from '@grpc/grpc-js';
import { envoyProtos, TYPE_URL } from '../../../src/envoy/protos.ts';
import { decodeSecret } from '../../../src/envoy/sds-secrets.ts';
import { SdsServer, type SdsServerOptions } from '../../../src/envoy/sds.ts';

export interface SdsResponse {
  version_info: string;
  resources: { type_url: string; value: Buffer }[];
  type_url: string;
  nonce: string;
}

const SdsClient = (): grpc.ServiceClientConstructor =>
  grpc.makeClientConstructor(envoyProtos().SecretDiscoveryService, 'SecretDiscoveryService');

export interface Harness {
  readonly address: string;
  readonly sds: SdsServer;
  readonly server: grpc.Server;
  close(): Promise<void>;
}

export async function startSds(opts: SdsServerOptions): Promise<Harness> {
  const server = new grpc.Server();
  const sds = new SdsServer(opts);
  sds.register(server);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    sds,
    server,
    close: async () => {
      sds.close();
      await new Promise<void>((r) => server.tryShutdown(() => r()));
    },
  };
}

export interface EnvoyOptions {
  readonly nodeId: string;
  readonly token?: string;
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
}

export class FakeEnvoy {
  readonly client: grpc.Client & Record<string, any>;
  constructor(
    readonly address: string,
    readonly opts: EnvoyOptions,
  ) {
    const Ctor = SdsClient();
    this.client = new Ctor(address, opts.credentials ?? grpc.credentials.createInsecure(), opts.channelOptions) as any;
  }

  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set('authorization', `Bearer ${this.opts.token}`);
    return md;
  }

  /** Open a StreamSecrets stream and send the first request for `names`. */
  open(names: string[], first: { version_info?: string; response_nonce?: string } = {}): SdsStream {
    const call = this.client.StreamSecrets(this.metadata()) as grpc.ClientDuplexStream<unknown, SdsResponse>;
    const s = new SdsStream(call);
    s.send({
      node: {
        id: this.opts.nodeId,
        cluster: 'test',
        user_agent_name: 'envoy',
        user_agent_build_version: { version: { major_number: 1, minor_number: 36, patch: 0 } },
      },
      resource_names: names,
      type_url: TYPE_URL.secret,
      version_info: first.version_info ?? '',
      response_nonce: first.response_nonce ?? '',
    });
    return s;
  }

  fetch(names: string[], nodeId = this.opts.nodeId): Promise<SdsResponse> {
    return new Promise((res, rej) =>
      this.client.FetchSecrets(
        { node: { id: nodeId }, resource_names: names, type_url: TYPE_URL.secret },
        this.metadata(),
        (e: grpc.ServiceError | null, r: SdsResponse) => (e ? rej(e) : res(r)),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}

export class SdsStream {
  readonly received: SdsResponse[] = [];
  readonly #waiters: ((r: SdsResponse) => void)[] = [];
  readonly status: Promise<grpc.StatusObject>;
  names: string[] = [];

  constructor(readonly call: grpc.ClientDuplexStream<unknown, SdsResponse>) {
    call.on('data', (r: SdsResponse) => {
      const w = this.#waiters.shift();
      if (w) w(r);
      else this.received.push(r);
    });
    this.status = new Promise((res) => {
      call.on('status', (s: grpc.StatusObject) => res(s));
      call.on('error', () => undefined);
    });
  }

  send(req: Record<string, unknown>): void {
    if (Array.isArray(req.resource_names)) this.names = req.resource_names as string[];
    this.call.write(req);
  }

  /** The next response, or a rejection after `ms` (a safety net: a busy machine can be slow). */
  next(ms = 30_000): Promise<SdsResponse> {
    const r = this.received.shift();
    if (r) return Promise.resolve(r);
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        rej(new Error(`no SDS response within ${ms} ms`));
      }, ms);
      const w = (x: SdsResponse): void => {
        clearTimeout(t);
        res(x);
      };
      this.#waiters.push(w);
    });
  }

  /** Resolves true if nothing arrives within `ms`. */
  async silentFor(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  ack(r: SdsResponse, names = this.names): void {
    this.send({ resource_names: names, type_url: TYPE_URL.secret, version_info: r.version_info, response_nonce: r.nonce });
  }

  nack(r: SdsResponse, lastAcceptedVersion: string, names = this.names): void {
    this.send({
      resource_names: names,
      type_url: TYPE_URL.secret,
      version_info: lastAcceptedVersion,
      response_nonce: r.nonce,
      error_detail: { code: 13, message: 'Failed to load certificate chain (test)' },
    });
  }

  end(): void {
    this.call.end();
  }
}

/** Decode every Secret of a response, by name. */
export function secretsOf(r: SdsResponse): Map<string, Record<string, any>> {
  const m = new Map<string, Record<string, any>>();
  for (const any of r.resources) {
    const s = decodeSecret(any);
    if (m.has(s.name)) throw new Error(`duplicate secret ${s.name}`);
    m.set(s.name, s);
  }
  return m;
}
