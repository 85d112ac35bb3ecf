/**
 * Finds the byte ranges of the elements of a top-level array in a JSON text, so each provider event can
 * be kept exactly as sent. JSON.parse would lose that: re-encoding changes escapes (`\/`, `\u00e9`),
 * number spellings (`1.50`) and whitespace, and an audit record must reach the sink as the provider
 * wrote it.
 *
 * The text must already have passed JSON.parse; this scanner relies on that and only tracks strings
 * and nesting. Like JSON.parse, it takes the last occurrence of a repeated key. It never recurses, so
 * any depth is safe here; `depths`, when given, receives each element's nesting depth (a scalar is 0,
 * `[]` and `{}` are 1), so callers can refuse what their own recursive code could not walk.
 */
export function arrayElementSpans(
  json: string,
  key: string,
  depths?: number[],
): Array<[number, number]> | undefined {
  let i = skipWs(json, 0);
  if (json[i] !== '{') return undefined;
  i++;
  let found: Array<[number, number]> | undefined;
  for (;;) {
    i = skipWs(json, i);
    if (json[i] === '}') return found;
    const keyStart = i;
    i = skipString(json, i);
    const name = JSON.parse(json.slice(keyStart, i)) as string;
    i = skipWs(json, i);
    i++; // ':'
    i = skipWs(json, i);
    if (name === key && json[i] === '[') {
      const spans: Array<[number, number]> = [];
      if (depths) depths.length = 0;
      i++;
      for (;;) {
        i = skipWs(json, i);
        if (json[i] === ']') {
          i++;
          break;
        }
        const start = i;
        i = skipValue(json, i, depths);
        spans.push([start, i]);
        i = skipWs(json, i);
        if (json[i] === ',') i++;
      }
      found = spans;
    } else {
      i = skipValue(json, i);
    }
    i = skipWs(json, i);
    if (json[i] === ',') i++;
  }
}

function skipWs(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

/**
 * `i` is at an opening quote; returns the index after the closing one. Jumps from quote to quote with
 * indexOf (strings are most of an audit event's bytes); a quote preceded by an odd number of
 * backslashes is escaped.
 */
function skipString(s: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const quote = s.indexOf('"', from);
    if (quote === -1) return s.length;
    let backslashes = 0;
    for (let k = quote - 1; k > i && s.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** Skips one value; with `depths`, appends its maximum nesting depth. */
function skipValue(s: string, i: number, depths?: number[]): number {
  const first = s.charCodeAt(i);
  if (first === OPEN_OBJECT || first === OPEN_ARRAY) {
    let depth = 0;
    let deepest = 0;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === QUOTE) {
        i = skipString(s, i);
        continue;
      }
      if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        depth++;
        if (depth > deepest) deepest = depth;
      } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        depth--;
        if (depth === 0) {
          depths?.push(deepest);
          return i + 1;
        }
      }
      i++;
    }
    depths?.push(deepest);
    return i;
  }
  depths?.push(0);
  if (first === QUOTE) return skipString(s, i);
  // A number, true, false or null: runs until a delimiter.
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (
      c === COMMA ||
      c === CLOSE_OBJECT ||
      c === CLOSE_ARRAY ||
      c === 0x20 ||
      c === 0x0a ||
      c === 0x0d ||
      c === 0x09
    ) {
      break;
    }
    i++;
  }
  return i;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
