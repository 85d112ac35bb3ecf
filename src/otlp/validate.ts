import { type DecodeProblem, OTLP_LIMITS, OtlpDecodeError } from './errors.ts';
import type { LocatedRecord, LogRecord, LogsRequest, ResourceLogs, ScopeLogs } from './model.ts';

/**
 * Shared by both decoders: builds a request from its parts so that one unreadable record (or resource, or
 * scope) becomes a named problem while everything readable beside it is kept.
 */
export interface RequestReader<R, S, L> {
  resourceLogs(body: unknown): readonly R[];
  /** Throws OtlpDecodeError for a broken resource; `scopeLogs` lists what it holds. */
  resource(value: R, path: string): Omit<ResourceLogs, 'scopeLogs'>;
  scopeLogs(value: R, path: string): readonly S[];
  scope(value: S, path: string): Omit<ScopeLogs, 'logRecords'>;
  logRecords(value: S, path: string): readonly L[];
  logRecord(value: L, path: string): LogRecord;
}

export interface DecodedLogs {
  /** Everything readable, in request order. */
  readonly request: LogsRequest;
  /** The same records with their context and their path in the request as sent. */
  readonly records: readonly LocatedRecord[];
  /** What was not, with how many records each problem cost. */
  readonly problems: readonly DecodeProblem[];
}

export function readRequest<R, S, L>(body: unknown, reader: RequestReader<R, S, L>): DecodedLogs {
  const problems: DecodeProblem[] = [];
  const resourceLogs: ResourceLogs[] = [];
  const records: LocatedRecord[] = [];
  for (const [r, rawResource] of reader.resourceLogs(body).entries()) {
    const rPath = `resourceLogs[${r}]`;
    let resource: Omit<ResourceLogs, 'scopeLogs'>;
    let scopeList: readonly S[];
    try {
      scopeList = reader.scopeLogs(rawResource, rPath);
      resource = reader.resource(rawResource, rPath);
    } catch (error) {
      problems.push(
        problemOf(
          error,
          rPath,
          countRecords(() => reader.scopeLogs(rawResource, rPath), reader),
        ),
      );
      continue;
    }
    const scopeLogs: ScopeLogs[] = [];
    for (const [s, rawScope] of scopeList.entries()) {
      const sPath = `${rPath}.scopeLogs[${s}]`;
      let scope: Omit<ScopeLogs, 'logRecords'>;
      let recordList: readonly L[];
      try {
        recordList = reader.logRecords(rawScope, sPath);
        scope = reader.scope(rawScope, sPath);
      } catch (error) {
        problems.push(
          problemOf(
            error,
            sPath,
            safeLength(() => reader.logRecords(rawScope, sPath)),
          ),
        );
        continue;
      }
      const logRecords: LogRecord[] = [];
      for (const [l, rawRecord] of recordList.entries()) {
        const lPath = `${sPath}.logRecords[${l}]`;
        try {
          const record = reader.logRecord(rawRecord, lPath);
          logRecords.push(record);
          records.push({
            resource: resource.resource,
            resourceSchemaUrl: resource.schemaUrl,
            scope: scope.scope,
            scopeSchemaUrl: scope.schemaUrl,
            record,
            path: lPath,
          });
        } catch (error) {
          problems.push(problemOf(error, lPath, 1));
        }
      }
      scopeLogs.push({ ...scope, logRecords });
    }
    resourceLogs.push({ ...resource, scopeLogs });
  }
  return { request: { resourceLogs }, records, problems };
}

function problemOf(error: unknown, path: string, records: number): DecodeProblem {
  if (error instanceof OtlpDecodeError) {
    return { path: error.path || path, message: error.message.slice((error.path || '').length + 2), records };
  }
  if (error instanceof RangeError) return { path, message: 'nested too deeply to read', records };
  throw error;
}

function safeLength(list: () => readonly unknown[]): number {
  try {
    return list().length;
  } catch {
    return 0;
  }
}

function countRecords<R, S, L>(scopes: () => readonly S[], reader: RequestReader<R, S, L>): number {
  let total = 0;
  for (const scope of (() => {
    try {
      return scopes();
    } catch {
      return [];
    }
  })()) {
    total += safeLength(() => reader.logRecords(scope, ''));
  }
  return total;
}

/** Throws when `depth` (1 = an attribute's own value) exceeds the nesting limit. */
export function checkDepth(depth: number, path: string): void {
  if (depth > OTLP_LIMITS.maxValueDepth) {
    throw new OtlpDecodeError(path, `value nested deeper than ${OTLP_LIMITS.maxValueDepth} levels`);
  }
}
