/**
 * Structured JSON logs (pino). Secrets never reach a log line: the redaction list below censors
 * the fields that could carry them, and code logs key ids and identifiers, not keys or tokens.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACTED_FIELDS = [
  'privateKey',
  'privateKeyPem',
  'keyPem',
  'token',
  'wit',
  'wpt',
  'authorization',
  '*.privateKey',
  '*.privateKeyPem',
  '*.keyPem',
  '*.token',
  '*.wit',
  '*.wpt',
  '*.authorization',
  'headers.authorization',
  'headers["workload-identity-token"]',
];

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { name: opts.name ?? 'wimse-server' },
      redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
