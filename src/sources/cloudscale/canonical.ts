/**
 * JSON Canonicalization Scheme (RFC 8785): one spelling per JSON value, so the same log entry hashes the
 * same whatever its key order, whitespace, escapes (`\/`, `\u00e9`) or number spelling (`1.50`, `1e3`)
 * on the wire. Object keys are sorted by their UTF-16 code units; strings and numbers are written the
 * way ECMAScript's JSON.stringify writes them, which is exactly what RFC 8785 specifies (§3.2.2).
 *
 * Input is a value from JSON.parse, so numbers are IEEE 754 doubles, as RFC 8785 assumes: integers
 * beyond 2^53 lose digits before they get here (no cloudscale field is known to carry one).
 */
export function canonicalJson(value: unknown): string {
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
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const record = value as Record<string, unknown>;
      // Array.prototype.sort compares strings by UTF-16 code units: RFC 8785 §3.2.3.
      const keys = Object.keys(record).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(record[key])}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`not a JSON value: ${typeof value}`);
  }
}
