/**
 * Keyset cursors: the last `(time, id)` of a page, bound to the scope, the requested range and the
 * order, as base64url JSON plus a truncated HMAC-SHA256 (secret derived from the seed). Anything that
 * does not verify, or that was minted for another scope or range, is refused.
 */
import { createHash, createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

export interface CursorBinding {
  /** `scopeKey(kind, id)` */
  readonly scope: string;
  readonly startUs: number;
  readonly endUs: number;
  readonly order: 'asc' | 'desc';
}

export interface CursorPosition {
  readonly tUs: number;
  readonly id: string;
}

interface Payload {
  v: 1;
  s: string;
  a: number;
  b: number;
  o: 'asc' | 'desc';
  t: number;
  i: string;
}

export class CursorCodec {
  readonly #secret: KeyObject;

  constructor(seed: number) {
    this.#secret = createSecretKey(
      createHash('sha256').update(`auditlog-shipper simulator cursor secret|${seed}`).digest(),
    );
  }

  encode(binding: CursorBinding, position: CursorPosition): string {
    const payload: Payload = {
      v: 1,
      s: binding.scope,
      a: binding.startUs,
      b: binding.endUs,
      o: binding.order,
      t: position.tUs,
      i: position.id,
    };
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${body}.${this.#sign(body)}`;
  }

  /** The position, or an error message when the cursor is malformed, tampered with or misbound. */
  decode(cursor: string, binding: CursorBinding): CursorPosition | { error: string } {
    const dot = cursor.indexOf('.');
    if (dot <= 0 || dot !== cursor.lastIndexOf('.')) return { error: 'malformed cursor' };
    const body = cursor.slice(0, dot);
    // Compare the signature text itself: base64 decoders ignore trailing junk.
    const given = Buffer.from(cursor.slice(dot + 1));
    const expected = Buffer.from(this.#sign(body));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { error: 'cursor signature mismatch' };
    }
    let payload: Partial<Payload>;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<Payload>;
    } catch {
      return { error: 'malformed cursor' };
    }
    if (payload.v !== 1 || typeof payload.t !== 'number' || typeof payload.i !== 'string') {
      return { error: 'malformed cursor' };
    }
    if (payload.s !== binding.scope) return { error: 'cursor belongs to another resource' };
    if (payload.a !== binding.startUs || payload.b !== binding.endUs) {
      return { error: 'cursor was issued for a different start-time-range/end-time-range' };
    }
    if (payload.o !== binding.order) return { error: 'cursor was issued for a different sort order' };
    return { tUs: payload.t, id: payload.i };
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#secret).update(body).digest().subarray(0, 18).toString('base64url');
  }
}
