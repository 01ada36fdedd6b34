/** The logging port of the CA (pino-compatible shape). Never pass key material or whole tokens. */
export interface CaLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: CaLogger = { info: () => {}, warn: () => {}, error: () => {} };
