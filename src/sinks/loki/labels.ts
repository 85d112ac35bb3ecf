import { type EnvelopeFields, fieldAt } from '../shared/envelope-fields.ts';

/**
 * Stream labels from templates such as `{scope.id}`. The label set is written the way Loki prints it
 * (`{a="x", b="y"}`, names sorted, values Go-quoted), so its answers, which name streams that way,
 * can be matched back to our entries.
 */
export class LabelRenderer {
  readonly #templates: Array<[name: string, parts: Array<string | { field: string }>]>;

  constructor(templates: Readonly<Record<string, string>>) {
    this.#templates = Object.entries(templates)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, template]) => [name, splitTemplate(template)]);
  }

  /** The stream's label set string; labels whose value renders empty are left out (Loki drops them too). */
  render(fields: EnvelopeFields): string {
    const pairs: string[] = [];
    for (const [name, parts] of this.#templates) {
      let value = '';
      for (const part of parts)
        value += typeof part === 'string' ? part : (fieldAt(fields, part.field) ?? '');
      if (value !== '') pairs.push(`${name}=${quote(value)}`);
    }
    return `{${pairs.join(', ')}}`;
  }
}

function splitTemplate(template: string): Array<string | { field: string }> {
  const parts: Array<string | { field: string }> = [];
  let last = 0;
  for (const match of template.matchAll(/\{([a-zA-Z.]+)\}/g)) {
    if (match.index > last) parts.push(template.slice(last, match.index));
    parts.push({ field: match[1] as string });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push(template.slice(last));
  return parts;
}

/** A Go-style double-quoted string (what Prometheus/Loki label parsers read and print). */
export function quote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/**
 * A label set string in one canonical spelling (sorted `name=value` pairs), so `{a="1",b="2"}` and
 * `{b="2", a="1"}` compare equal. Undefined when it is not a label set.
 */
export function canonicalLabels(text: string): string | undefined {
  const inner = text.trim();
  if (!inner.startsWith('{') || !inner.endsWith('}')) return undefined;
  const pairs: string[] = [];
  const pair = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  const body = inner.slice(1, -1);
  pair.lastIndex = 0;
  while (pair.lastIndex < body.length) {
    const at = pair.lastIndex;
    const m = pair.exec(body);
    if (!m || m.index !== at) return undefined;
    pairs.push(`${m[1]}=${m[2]}`);
  }
  return pairs.sort().join(',');
}
