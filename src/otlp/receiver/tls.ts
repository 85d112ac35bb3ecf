import { readFile, stat } from 'node:fs/promises';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';

export interface ReceiverTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** When set, clients must present a certificate signed by this CA. */
  readonly clientCaFile?: string | undefined;
}

/** Reads the PEM files a TLS server needs. */
export async function readTlsFiles(files: ReceiverTlsFiles): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([
    readFile(files.certFile),
    readFile(files.keyFile),
    files.clientCaFile === undefined ? undefined : readFile(files.clientCaFile),
  ]);
  return { cert, key, ...(ca ? { ca } : {}) };
}

/**
 * Re-reads the certificate files when they change (cert-manager and Kubernetes Secret volumes replace
 * them in place) and hands the new context to `apply`. Polls their mtimes: inotify misses the symlink
 * swap Secret volumes use. A file that does not parse (caught mid-write) keeps the old context in use.
 */
export function watchTlsFiles(
  files: ReceiverTlsFiles,
  intervalMs: number,
  apply: (options: SecureContextOptions) => void,
  log: Logger,
): () => void {
  const paths = [files.certFile, files.keyFile, ...(files.clientCaFile ? [files.clientCaFile] : [])];
  let last: string | undefined;
  let running = false;
  const signature = async (): Promise<string> =>
    (await Promise.all(paths.map(async (p) => `${(await stat(p)).mtimeMs}:${(await stat(p)).size}`))).join(
      '|',
    );
  void signature().then(
    (s) => {
      last = s;
    },
    () => undefined,
  );
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      try {
        const now = await signature();
        if (now === last) return;
        apply(await readTlsFiles(files));
        last = now;
        log.info({ certFile: files.certFile }, 'receiver TLS certificate reloaded');
      } catch (error) {
        log.warn(
          { err: error, certFile: files.certFile },
          'receiver TLS files could not be reloaded; the previous ones stay in use',
        );
      } finally {
        running = false;
      }
    })();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
