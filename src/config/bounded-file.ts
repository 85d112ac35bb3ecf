import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** Secrets are tokens, passwords and key documents: a few KiB at most. */
export const SECRET_FILE_MAX_BYTES = 64 * 1024;
/** CA bundles and client certificates; the system's whole bundle is about 220 KiB. */
export const PEM_FILE_MAX_BYTES = 1024 * 1024;

/** A file that cannot serve as a small config input; the message names the file and why. */
export class FileRefusedError extends Error {
  /** `ENOENT`, `EACCES`..., or `not_regular` / `too_large` for files we refuse ourselves. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FileRefusedError';
    this.code = code;
  }
}

/**
 * Reads a small regular file (a secret, a CA bundle) without ever blocking the event loop or reading
 * without end. `/dev/zero` once grew the process to 22 GB and a FIFO hung `validate` (and, after a
 * reload, the whole daemon), so: the open is non-blocking (a FIFO without a writer opens at once), only
 * a regular file is read (fstat on the open descriptor, so a swapped symlink cannot slip past), and at
 * most `maxBytes + 1` bytes are ever read, which also catches a file that grows after the fstat.
 */
export function readBoundedFile(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new FileRefusedError(code, `cannot read file ${path} (${code})`, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new FileRefusedError('not_regular', `file ${path} is ${kindOf(stat)}, not a regular file`);
    }
    if (stat.size > maxBytes) throw tooLarge(path, maxBytes, stat.size);
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
    }
    if (length > maxBytes) throw tooLarge(path, maxBytes, undefined);
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof FileRefusedError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new FileRefusedError(code, `cannot read file ${path} (${code})`, { cause: error });
  } finally {
    closeSync(fd);
  }
}

function tooLarge(path: string, maxBytes: number, size: number | undefined): FileRefusedError {
  const actual = size === undefined ? 'more' : `${size} bytes`;
  return new FileRefusedError(
    'too_large',
    `file ${path} is larger than ${formatBytes(maxBytes)} (${actual}), refused: not a credential file`,
  );
}

function formatBytes(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a plain file';
}
