/**
 * Loki push bodies. Protobuf (`logproto.PushRequest`, pkg/push/push.proto) is written by hand: four
 * tiny messages do not justify generated code, and the Loki test server decodes it with protobufjs
 * from the .proto text, which checks this writer independently.
 *
 *   PushRequest      { repeated StreamAdapter streams = 1; }
 *   StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; }
 *   EntryAdapter     { Timestamp timestamp = 1; string line = 2; repeated LabelPairAdapter structuredMetadata = 3; }
 *   Timestamp        { int64 seconds = 1; int32 nanos = 2; }
 *   LabelPairAdapter { string name = 1; string value = 2; }
 */

export interface PushEntry {
  /** Nanoseconds since the epoch, decimal. */
  readonly tsNanos: string;
  readonly line: string;
  readonly metadata: ReadonlyArray<readonly [name: string, value: string]>;
}

export interface PushStream {
  readonly labels: string;
  readonly entries: readonly PushEntry[];
}

export function encodeProtobuf(streams: readonly PushStream[]): Buffer {
  const parts: Buffer[] = [];
  for (const stream of streams) parts.push(field(1, encodeStream(stream)));
  return Buffer.concat(parts);
}

function encodeStream(stream: PushStream): Buffer {
  const parts: Buffer[] = [field(1, Buffer.from(stream.labels, 'utf8'))];
  for (const entry of stream.entries) parts.push(field(2, encodeEntry(entry)));
  return Buffer.concat(parts);
}

function encodeEntry(entry: PushEntry): Buffer {
  const ns = BigInt(entry.tsNanos);
  const seconds = ns / 1_000_000_000n;
  const nanos = ns % 1_000_000_000n;
  const timestamp = Buffer.concat([
    ...(seconds !== 0n ? [varintField(1, seconds)] : []),
    ...(nanos !== 0n ? [varintField(2, nanos)] : []),
  ]);
  const parts: Buffer[] = [field(1, timestamp), field(2, Buffer.from(entry.line, 'utf8'))];
  for (const [name, value] of entry.metadata) {
    parts.push(
      field(3, Buffer.concat([field(1, Buffer.from(name, 'utf8')), field(2, Buffer.from(value, 'utf8'))])),
    );
  }
  return Buffer.concat(parts);
}

/** A length-delimited field (wire type 2). */
function field(number: number, payload: Buffer): Buffer {
  return Buffer.concat([varint(BigInt((number << 3) | 2)), varint(BigInt(payload.length)), payload]);
}

function varintField(number: number, value: bigint): Buffer {
  return Buffer.concat([varint(BigInt(number << 3)), varint(value)]);
}

function varint(value: bigint): Buffer {
  // Negative int64 values are written as their 64-bit two's complement (10 bytes), as protobuf does.
  let v = value < 0n ? (1n << 64n) + value : value;
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}

/** The JSON push format: `[ns string, line, {metadata}]` per value. */
export function encodeJson(streams: readonly PushStream[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      streams: streams.map((s) => ({
        stream: labelObject(s.labels),
        values: s.entries.map((e) =>
          e.metadata.length > 0 ? [e.tsNanos, e.line, Object.fromEntries(e.metadata)] : [e.tsNanos, e.line],
        ),
      })),
    }),
    'utf8',
  );
}

/** `{a="x", b="y"}` → {a: 'x', b: 'y'} (the JSON format wants labels as an object). */
function labelObject(labels: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    out[m[1] as string] = JSON.parse(
      `"${(m[2] as string).replace(/\\x([0-9a-f]{2})/g, '\\u00$1')}"`,
    ) as string;
  }
  return out;
}
