import { MAX_JSON_DEPTH } from '../json-page.ts';

/**
 * JSON Canonicalization Scheme (RFC 8785): one spelling per JSON value, so the same log entry hashes the
 * same whatever its key order, whitespace, escapes (`\/`, `\u00e9`) or number spelling (`1.50`, `1e3`)
 * on the wire. Object keys are sorted by their UTF-16 code units; strings and numbers are written the
 * way ECMAScript's JSON.stringify writes them, which is exactly what RFC 8785 specifies (§3.2.2).
 *
 * Input is a value from JSON.parse, so numbers are IEEE 754 doubles, as RFC 8785 assumes: integers
 * beyond 2^53 lose digits before they get here (no cloudscale field is known to carry one).
 *
 * It recurses, so it refuses values nested deeper than MAX_JSON_DEPTH (a RangeError from a blown stack
 * would otherwise stall the poll as an internal error); callers check the depth first (json-page.ts).
 */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_JSON_DEPTH) throw new TypeError(`nested more than ${MAX_JSON_DEPTH} levels deep`);
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`not representable in JSON: ${value}`);
      // JSON.stringify prints -0 as 0 and uses the shortest round-trip form, as RFC 8785 requires.
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(',')}]`;
      const record = value as Record<string, unknown>;
      // Array.prototype.sort compares strings by UTF-16 code units: RFC 8785 §3.2.3.
      const keys = Object.keys(record).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(record[key], depth + 1)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`not a JSON value: ${typeof value}`);
  }
}
