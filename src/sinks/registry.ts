import { elasticsearch, opensearch } from './elasticsearch/index.ts';
import { file } from './file/index.ts';
import { loki } from './loki/index.ts';
import { otlp } from './otlp/index.ts';
import { s3 } from './s3/index.ts';
import type { AnySinkModule } from './sink.ts';
import { stdout } from './stdout/index.ts';

/** Every sink the shipper knows. Adding one is a folder under src/sinks and a line here. */
export const sinkModules: ReadonlyMap<string, AnySinkModule> = new Map(
  [file, stdout, loki, elasticsearch, opensearch, s3, otlp].map((m) => [m.type, m]),
);
