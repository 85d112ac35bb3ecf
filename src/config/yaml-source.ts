import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { ConfigIssue, PathSegment } from './errors.ts';

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** A parsed YAML file that can say where any path in it was written. */
export interface YamlSource {
  /** The plain data (anchors and merge keys resolved); undefined when the file has no content. */
  readonly data: unknown;
  /**
   * Where the value at `path` starts (or its key, with `at: 'key'`). A path that does not exist in the
   * file (a missing key) resolves to the deepest mapping or list that does: the place to add it.
   */
  locate(path: readonly PathSegment[], at?: 'value' | 'key'): Position | undefined;
}

const MAX_SYNTAX_ERRORS = 3;

export type ParseResult = { ok: true; source: YamlSource } | { ok: false; issues: ConfigIssue[] };

/**
 * Parses one YAML document. Syntax errors and duplicate keys are returned with their line; their
 * messages are the parser's own, without the source excerpt (which could show a credential).
 */
export function parseYaml(text: string): ParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true });
  const position = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = [];
    const syntaxLines = new Set<number>();
    let firstOmitted: Position | undefined;
    for (const error of doc.errors) {
      const at = position(error.pos[0]);
      if (error.code === 'DUPLICATE_KEY') {
        issues.push({
          path: '',
          ...at,
          message: `duplicate key${keyAt(text, error.pos[0])}: a key may appear only once in a mapping`,
        });
        continue;
      }
      // One syntax error tends to set off a cascade, a few per line after it: keep the first few lines'.
      if (syntaxLines.has(at.line)) continue;
      syntaxLines.add(at.line);
      if (syntaxLines.size > MAX_SYNTAX_ERRORS) {
        firstOmitted ??= at;
        continue;
      }
      issues.push({
        path: '',
        ...at,
        message: `invalid YAML: ${sentence(error.message)}${flowHint(text, at.line)}`,
      });
    }
    if (firstOmitted !== undefined) {
      const more = syntaxLines.size - MAX_SYNTAX_ERRORS;
      issues.push({
        path: '',
        ...firstOmitted,
        message: `invalid YAML: ${more} more ${more === 1 ? 'line' : 'lines'} with errors from here, probably following from the ones above`,
      });
    }
    return { ok: false, issues };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 }) ?? undefined;
  } catch (error) {
    // An alias to nothing, an alias bomb: rare enough to report without a line.
    return {
      ok: false,
      issues: [{ path: '', message: `invalid YAML: ${sentence((error as Error).message)}` }],
    };
  }
  return {
    ok: true,
    source: {
      data,
      locate: (path, at = 'value') => {
        const offset = locateOffset(doc, path, at);
        return offset === undefined ? undefined : position(offset);
      },
    },
  };
}

function locateOffset(doc: Document, path: readonly PathSegment[], at: 'value' | 'key'): number | undefined {
  let node: unknown = doc.contents;
  let found = start(node);
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const segment = path[i] as PathSegment;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (pair === undefined) return found;
      if (last && at === 'key') return start(pair.key) ?? found;
      // `key:` with nothing after it has a null value; point at the key then.
      node = pair.value ?? pair.key;
      if (pair.value === null || (isScalar(pair.value) && pair.value.source === '')) {
        found = start(pair.key) ?? found;
        continue;
      }
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) return found;
      node = item;
    } else {
      return found;
    }
    found = start(node) ?? found;
  }
  return found;
}

function start(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/** The parser's messages start with a capital letter and sometimes lack a stop; ours are lower-case. */
function sentence(message: string): string {
  const firstLine = message.split('\n')[0] ?? message;
  return firstLine.charAt(0).toLowerCase() + firstLine.slice(1);
}

/** ` "name"`: the key written at `offset` (a duplicate key), or nothing when it is not a plain key. */
function keyAt(text: string, offset: number): string {
  const rest = text.slice(offset).split(/\r?\n/, 1)[0] ?? '';
  const key = /^["']?([A-Za-z0-9_$.-]{1,80})["']?\s*:/.exec(rest)?.[1];
  return key === undefined ? '' : ` "${key}"`;
}

/** `${VAR}` unquoted inside `{ }` or `[ ]` is a classic: its braces read as YAML flow syntax. */
function flowHint(text: string, line: number): string {
  const source = text.split(/\r?\n/)[line - 1] ?? '';
  return /[[{].*\$\{/.test(source) ? ` (inside { } or [ ], quote \${VAR} references: "\${VAR}")` : '';
}
