/**
 * Limits every OTLP decoder applies: input comes from the network and is hostile until proven otherwise.
 * Body size is bounded by the transports (they read at most their limit); these bound what a small body
 * can still make expensive.
 */
export const OTLP_LIMITS = {
  /**
   * Nesting of attribute values (an array or key-value list inside another). 32 is far beyond any real
   * audit record and far below what would exhaust the stack or protobufjs' own 100-message limit.
   */
  maxValueDepth: 32,
  /** Problems named in one error answer; the rest are counted. */
  maxReportedProblems: 10,
} as const;

/** The request as a whole cannot be read (bad protobuf, JSON syntax, wrong top-level shape). */
export class OtlpDecodeError extends Error {
  /** Where in the request, e.g. `resourceLogs[0].scopeLogs[1]`; empty for the body itself. */
  readonly path: string;

  constructor(path: string, message: string) {
    super(path === '' ? message : `${path}: ${message}`);
    this.name = 'OtlpDecodeError';
    this.path = path;
  }
}

/** Part of a request that was unreadable while the rest was fine, and how many records it held. */
export interface DecodeProblem {
  readonly path: string;
  readonly message: string;
  readonly records: number;
}

/** One line naming the first problems and counting the rest, for an error answer. */
export function describeProblems(problems: readonly DecodeProblem[]): string {
  const shown = problems.slice(0, OTLP_LIMITS.maxReportedProblems).map((p) => `${p.path}: ${p.message}`);
  const more = problems.length - shown.length;
  return more > 0 ? `${shown.join('; ')}; and ${more} more` : shown.join('; ');
}
