/**
 * The index template `manageTemplate: true` installs. Envelope fields are typed explicitly so a
 * provider's odd value can never turn them into something else; `raw` is kept in `_source` but not
 * indexed, so provider payloads of every shape fit one index without mapping conflicts (search the
 * normalized fields; read `raw` from the hit). Works on Elasticsearch 7.8+ and OpenSearch 1+.
 */
export function indexTemplate(target: string, dataStream: boolean): Record<string, unknown> {
  const keyword = { type: 'keyword', ignore_above: 1024 };
  return {
    index_patterns: [target.replace(/\{[a-z.]+\}/g, '*')],
    ...(dataStream ? { data_stream: {} } : {}),
    // Above the built-in templates (priority 100 for logs-*-*), which would make a logsdb stream.
    priority: 200,
    template: {
      mappings: {
        properties: {
          '@timestamp': { type: 'date_nanos' },
          id: keyword,
          originalId: keyword,
          provider: keyword,
          scope: { properties: { kind: keyword, id: keyword } },
          time: { type: 'date_nanos' },
          receivedAt: { type: 'date_nanos' },
          seenAt: { type: 'date_nanos' },
          action: keyword,
          actor: { properties: { id: keyword, email: keyword, type: keyword } },
          sourceIp: keyword,
          resource: { properties: { id: keyword, name: keyword, type: keyword } },
          anomalies: keyword,
          rawSha256: keyword,
          // The provider's exact bytes where they are not valid UTF-8: kept in _source, never indexed.
          rawBase64: { type: 'binary' },
          raw: { type: 'object', enabled: false },
        },
      },
    },
    _meta: { managed_by: 'auditlog-shipper' },
  };
}
