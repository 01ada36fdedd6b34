import { createHash } from 'node:crypto';

/**
 * b64url(SHA-256(ASCII bytes of `value`)): the hash WPT claims use to bind the WIT (`wth`), a
 * Txn-Token (`tth`) and other context tokens (`oth`) (wpt-02 §2).
 */
export const tokenHash = (value: string): string => createHash('sha256').update(value, 'ascii').digest('base64url');
