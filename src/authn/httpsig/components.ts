/**
 * RFC 9421 §2: component identifiers and their values.
 *
 * Derived components (§2.2): @method, @target-uri, @authority, @scheme, @request-target, @path,
 * @query, @query-param (with `name`), @status. Field components (§2.1) with the parameters
 * `sf`, `key`, `bs` and `req`. `tr` (trailers) is refused: no trailers reach this layer.
 */
import { parseDictionary, parseItem, parseList } from './sf-parse.ts';
import { serializeDictionary, serializeItem, serializeList, serializeMember } from './sf-serialize.ts';
import { SfError, type Item, type Parameters } from './sf-types.ts';
import { isAuthority, isScheme } from '../request.ts';
import {
  combinedFieldValue,
  fieldLines,
  httpsigError,
  isResponse,
  trimOws,
  type HttpMessage,
  type HttpRequestMessage,
  type SignatureContext,
} from './message.ts';

/** A covered component: its name, its parameters, and its serialized identifier. */
export interface ComponentId {
  readonly name: string;
  readonly params: Parameters;
  /** RFC 8941 serialization, e.g. `"@query-param";name="Pet"`: the start of its base line. */
  readonly id: string;
}

export type SfKind = 'dictionary' | 'list' | 'item';

/** Structured fields whose type we know, for the `sf` and `key` parameters (RFC 9421 §2.1.1). */
export const KNOWN_SF_TYPES: Readonly<Record<string, SfKind>> = {
  signature: 'dictionary',
  'signature-input': 'dictionary',
  'accept-signature': 'dictionary',
  'content-digest': 'dictionary',
  'repr-digest': 'dictionary',
  'want-content-digest': 'dictionary',
  'want-repr-digest': 'dictionary',
  priority: 'dictionary',
  'cache-status': 'list',
  'proxy-status': 'list',
};

export interface ComponentOptions {
  /** Extra structured-field types by lower-case field name. */
  sfTypes?: Readonly<Record<string, SfKind>>;
}

const DERIVED = new Set(['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query', '@query-param', '@status']);
const FLAG_PARAMS = new Set(['sf', 'bs', 'req', 'tr']);

/** Read one covered component from an inner-list item. Throws `httpsig.malformed`. */
export function componentFromItem(it: Item): ComponentId {
  if (it.value.type !== 'string') throw httpsigError('httpsig.malformed', 'a covered component is not a string');
  const name = it.value.value;
  for (const [k, v] of it.params) {
    if (FLAG_PARAMS.has(k)) {
      if (v.type !== 'boolean' || !v.value) throw httpsigError('httpsig.malformed', `component parameter ${k} must be a true boolean`);
    } else if (k === 'key' || k === 'name') {
      if (v.type !== 'string') throw httpsigError('httpsig.malformed', `component parameter ${k} must be a string`);
    } else {
      throw httpsigError('httpsig.malformed', `unknown component parameter ${k}`);
    }
  }
  if (name.startsWith('@')) {
    if (!DERIVED.has(name)) throw httpsigError('httpsig.malformed', `unknown derived component ${name}`);
    for (const k of it.params.keys()) {
      if (k !== 'req' && !(k === 'name' && name === '@query-param')) {
        throw httpsigError('httpsig.malformed', `parameter ${k} is not allowed on ${name}`);
      }
    }
    if (name === '@query-param' && !it.params.has('name')) throw httpsigError('httpsig.malformed', '@query-param needs a name parameter');
  } else {
    // §2.1: field names are lower-cased in component identifiers.
    if (name === '' || name !== name.toLowerCase() || !/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) {
      throw httpsigError('httpsig.malformed', 'a covered field name is not a lower-case token');
    }
    if (it.params.has('name')) throw httpsigError('httpsig.malformed', 'name is only allowed on @query-param');
    const p = it.params;
    // §2.1: bs cannot be combined with sf or key; key implies a dictionary.
    if (p.has('bs') && (p.has('sf') || p.has('key'))) throw httpsigError('httpsig.malformed', 'bs cannot be combined with sf or key');
  }
  return { name, params: it.params, id: componentIdString(name, it.params) };
}

export function componentIdString(name: string, params: Parameters): string {
  try {
    return serializeItem({ kind: 'item', value: { type: 'string', value: name }, params });
  } catch (e) {
    if (e instanceof SfError) throw httpsigError('httpsig.malformed', 'component identifier cannot be serialized');
    throw e;
  }
}

/** A component by name with optional flags, for signers: `component('@method', { req: true })`. */
export function component(name: string, opts: { req?: boolean; sf?: boolean; bs?: boolean; key?: string; name?: string } = {}): ComponentId {
  const params: Parameters = new Map();
  if (opts.key !== undefined) params.set('key', { type: 'string', value: opts.key });
  if (opts.name !== undefined) params.set('name', { type: 'string', value: opts.name });
  if (opts.sf) params.set('sf', { type: 'boolean', value: true });
  if (opts.bs) params.set('bs', { type: 'boolean', value: true });
  if (opts.req) params.set('req', { type: 'boolean', value: true });
  return componentFromItem({ kind: 'item', value: { type: 'string', value: name }, params });
}

/** The component value (RFC 9421 §2.1, §2.2). Absent components throw `httpsig.component_missing`. */
export function componentValue(c: ComponentId, ctx: SignatureContext, opts: ComponentOptions = {}): string {
  let msg: HttpMessage = ctx.message;
  if (c.params.has('req')) {
    // §2.4: `req` names the request a response answers; it is meaningless on a request.
    if (!isResponse(ctx.message)) throw httpsigError('httpsig.malformed', `${c.id}: req on a request`);
    if (!ctx.request) throw httpsigError('httpsig.component_missing', `${c.id}: the related request is not available`);
    msg = ctx.request;
  }
  return c.name.startsWith('@') ? derivedValue(c, msg) : fieldValue(c, msg, opts);
}

const missing = (c: ComponentId, why: string) => httpsigError('httpsig.component_missing', `${c.id}: ${why}`);

function asRequest(c: ComponentId, msg: HttpMessage): HttpRequestMessage {
  if (isResponse(msg)) throw httpsigError('httpsig.malformed', `${c.id} is a request component`);
  return msg;
}

function derivedValue(c: ComponentId, msg: HttpMessage): string {
  if (c.name === '@status') {
    // §2.2.9: the three-digit status code; only on responses.
    if (!isResponse(msg)) throw httpsigError('httpsig.malformed', '@status is a response component');
    if (!Number.isInteger(msg.status) || msg.status < 100 || msg.status > 999) throw missing(c, 'no valid status');
    return String(msg.status);
  }
  const req = asRequest(c, msg);
  switch (c.name) {
    case '@method':
      // §2.2.1: the method as sent (methods are case-sensitive).
      return req.method;
    case '@scheme':
      // §2.2.4
      return schemeOf(c, req);
    case '@authority':
      // §2.2.3: normalized per RFC 9110 §4.2.3 (lower case, default port removed).
      return authorityOf(c, req);
    case '@target-uri':
      // §2.2.2: the full target URI.
      return `${schemeOf(c, req)}://${authorityOf(c, req)}${pathOf(req)}${req.query === '?' ? '' : req.query}`;
    case '@request-target':
      // §2.2.5: origin-form, the path and query as they appear in the request line.
      return pathOf(req) + (req.query === '?' ? '' : req.query);
    case '@path':
      // §2.2.6: the absolute path, `/` when empty.
      return pathOf(req);
    case '@query':
      // §2.2.7: the query with its leading `?`; `?` when there is none.
      return req.query === '' ? '?' : req.query;
    case '@query-param':
      return queryParamValue(c, req);
    default:
      throw httpsigError('httpsig.malformed', `unknown derived component ${c.name}`);
  }
}

const pathOf = (req: HttpRequestMessage): string => (req.path === '' ? '/' : req.path);

function schemeOf(c: ComponentId, req: HttpRequestMessage): string {
  if (!req.scheme) throw missing(c, 'the scheme is not known');
  // Adapters pass what they were given: check it before it reaches a signature base line.
  if (!isScheme(req.scheme)) throw httpsigError('httpsig.malformed', 'the request scheme is invalid');
  return req.scheme.toLowerCase();
}

function authorityOf(c: ComponentId, req: HttpRequestMessage): string {
  let authority = req.authority;
  if (authority !== undefined && !isAuthority(authority)) throw httpsigError('httpsig.malformed', 'the request authority is invalid');
  if (authority === undefined) {
    // HTTP/2 and HTTP/3 carry it as :authority; HTTP/1.1 as Host. Exactly one line is accepted.
    const lines = fieldLines(req.headers, ':authority') ?? fieldLines(req.headers, 'host');
    if (!lines || lines.length !== 1) throw missing(c, 'the authority is not known');
    authority = trimOws(lines[0] as string);
  }
  authority = authority.toLowerCase();
  const scheme = req.scheme?.toLowerCase();
  if (scheme === 'https' && authority.endsWith(':443')) authority = authority.slice(0, -4);
  else if (scheme === 'http' && authority.endsWith(':80')) authority = authority.slice(0, -3);
  if (authority === '') throw missing(c, 'the authority is empty');
  return authority;
}

/** §2.2.8: parse the query as application/x-www-form-urlencoded; re-encode name and value. */
function queryParamValue(c: ComponentId, req: HttpRequestMessage): string {
  const nameParam = c.params.get('name');
  if (nameParam?.type !== 'string') throw httpsigError('httpsig.malformed', '@query-param needs a name parameter');
  const q = req.query.startsWith('?') ? req.query.slice(1) : req.query;
  const values: string[] = [];
  try {
    for (const [n, v] of new URLSearchParams(q)) {
      if (encodeURIComponent(n) === nameParam.value) values.push(encodeURIComponent(v));
    }
  } catch {
    throw httpsigError('httpsig.malformed', 'the query cannot be decoded');
  }
  if (values.length === 0) throw missing(c, 'the query parameter is absent');
  // §2.2.8: a parameter that occurs more than once cannot be signed unambiguously.
  if (values.length > 1) throw httpsigError('httpsig.malformed', `${c.id}: the query parameter occurs more than once`);
  return values[0] as string;
}

function fieldValue(c: ComponentId, msg: HttpMessage, opts: ComponentOptions): string {
  if (c.params.has('tr')) throw missing(c, 'trailers are not available');
  const lines = fieldLines(msg.headers, c.name);
  if (!lines) throw missing(c, 'the field is absent');
  if (c.params.has('bs')) {
    // §2.1.3: each line (trimmed) as a Byte Sequence, serialized as a List.
    return lines.map((l) => `:${Buffer.from(trimOws(l), 'latin1').toString('base64')}:`).join(', ');
  }
  const combined = combinedFieldValue(lines);
  const key = c.params.get('key');
  if (!c.params.has('sf') && key === undefined) return combined;
  const kind = opts.sfTypes?.[c.name] ?? (Object.hasOwn(KNOWN_SF_TYPES, c.name) ? KNOWN_SF_TYPES[c.name] : undefined);
  try {
    if (key !== undefined) {
      // §2.1.2: the named member of a Dictionary field, re-serialized.
      if (kind !== undefined && kind !== 'dictionary') throw httpsigError('httpsig.malformed', `${c.name} is not a dictionary`);
      const member = parseDictionary(combined).get(key.value as string);
      if (!member) throw missing(c, 'the dictionary member is absent');
      return serializeMember(member);
    }
    // §2.1.1: the field parsed with its known type and re-serialized.
    switch (kind) {
      case 'dictionary':
        return serializeDictionary(parseDictionary(combined));
      case 'list':
        return serializeList(parseList(combined));
      case 'item':
        return serializeItem(parseItem(combined));
      default:
        throw httpsigError('httpsig.malformed', `${c.name}: structured field type unknown`);
    }
  } catch (e) {
    if (e instanceof SfError) throw httpsigError('httpsig.malformed', `${c.name} is not a valid structured field`);
    throw e;
  }
}
