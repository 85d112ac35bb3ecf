/**
 * What the loader reports: every problem of a config file at once, each named by its path in the file
 * (`sinks[1].url`), with the line and column the YAML gives, so an operator fixes them all in one pass.
 * Messages never carry a configured value: a value may be a credential.
 */

/** One key of a path: a mapping key, or a list index. */
export type PathSegment = string | number;

export interface ConfigIssue {
  /** `a.b[1].c`; empty for problems of the file as a whole (unreadable, YAML syntax). */
  readonly path: string;
  /** 1-based, where the YAML gives one. */
  readonly line?: number;
  readonly column?: number;
  /** The environment variable the bad value came from (daemon settings can be overridden from the environment). */
  readonly env?: string;
  readonly message: string;
}

export class ConfigError extends Error {
  /** The file (or the `origin` given with inline text) the problems are in. */
  readonly origin: string;
  readonly issues: readonly ConfigIssue[];

  constructor(origin: string, issues: readonly ConfigIssue[]) {
    super(formatReport(origin, issues));
    this.name = 'ConfigError';
    this.origin = origin;
    this.issues = issues;
  }

  /** `config/x.yaml: 3 problems` then one indented line per problem. */
  format(): string {
    return formatReport(this.origin, this.issues);
  }
}

export function isConfigError(value: unknown): value is ConfigError {
  return value instanceof ConfigError;
}

/** `a.b[1].c`; keys that are not plain identifiers are quoted: `labels["app.kubernetes.io/name"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** `sinks[1].url (line 27, column 10): must be an http(s) URL`. */
export function formatIssue(issue: ConfigIssue): string {
  const where: string[] = [];
  if (issue.env !== undefined) where.push(`from env ${issue.env}`);
  if (issue.line !== undefined) {
    where.push(
      issue.column !== undefined ? `line ${issue.line}, column ${issue.column}` : `line ${issue.line}`,
    );
  }
  if (issue.path === '') return where.length > 0 ? `${where.join(', ')}: ${issue.message}` : issue.message;
  return where.length > 0
    ? `${issue.path} (${where.join(', ')}): ${issue.message}`
    : `${issue.path}: ${issue.message}`;
}

export function formatReport(origin: string, issues: readonly ConfigIssue[]): string {
  const header = `${origin}: ${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}`;
  return [header, ...issues.map((issue) => `  ${formatIssue(issue)}`)].join('\n');
}

/** Issues in file order; those without a line (file-level, environment) first, in the order found. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => {
      const la = a.issue.line ?? 0;
      const lb = b.issue.line ?? 0;
      if (la !== lb) return la - lb;
      const ca = a.issue.column ?? 0;
      const cb = b.issue.column ?? 0;
      return ca !== cb ? ca - cb : a.index - b.index;
    })
    .map(({ issue }) => issue);
}
