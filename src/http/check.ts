import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { type PeerCertificate, connect as tlsConnect } from 'node:tls';

/**
 * What `auditlog-shipper doctor` reports about one provider or sink: a list of steps (DNS, TLS, auth,
 * permission, one harmless read or write), each ok, failed, skipped or a warning, with a detail line.
 * Providers and sinks produce them through their module's optional `check`; these are the shared parts.
 * Details must never contain a secret: they are printed.
 */
export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckStep {
  readonly step: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export const ok = (step: string, detail: string): CheckStep => ({ step, status: 'ok', detail });
export const fail = (step: string, detail: string): CheckStep => ({ step, status: 'fail', detail });
export const warn = (step: string, detail: string): CheckStep => ({ step, status: 'warn', detail });
export const skip = (step: string, detail: string): CheckStep => ({ step, status: 'skip', detail });

/** Runs one step: ok with what `run` returns, fail with the error's message. */
export async function step(name: string, run: () => Promise<string>): Promise<CheckStep> {
  try {
    return ok(name, await run());
  } catch (error) {
    return fail(name, error instanceof Error ? error.message : String(error));
  }
}

/** The `tls` block of a provider or sink, as far as a handshake needs it. */
export interface EndpointTls {
  /** Extra CA bundle (PEM) to trust. */
  readonly caFile?: string | undefined;
  readonly insecureSkipVerify?: boolean | undefined;
  /** Name to verify the certificate against, if not the URL host. */
  readonly serverName?: string | undefined;
}

const TIMEOUT_MS = 10_000;

/**
 * DNS and TLS of one endpoint, as the shipper would reach it: the name resolves, and for https the
 * handshake verifies the certificate (with the configured CA) and says when it expires. `label` tells
 * several endpoints of one target apart ("dns (token endpoint)").
 */
export async function checkEndpoint(url: string, tls: EndpointTls = {}, label = ''): Promise<CheckStep[]> {
  const suffix = label === '' ? '' : ` (${label})`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [fail(`dns${suffix}`, 'not a URL')];
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const steps: CheckStep[] = [];
  const dns = await step(`dns${suffix}`, async () => {
    const addresses = await lookup(host, { all: true });
    return `${host} → ${addresses.map((a) => a.address).join(', ')}`;
  });
  steps.push(dns);
  if (dns.status === 'fail') return steps;
  if (parsed.protocol !== 'https:') {
    steps.push(warn(`tls${suffix}`, `plain ${parsed.protocol.replace(':', '')}: nothing is encrypted`));
    return steps;
  }
  const port = Number(parsed.port || 443);
  steps.push(
    await step(`tls${suffix}`, async () => {
      const cert = await handshake(host, port, tls);
      const days = Math.floor((Date.parse(cert.valid_to) - Date.now()) / 86_400_000);
      const subject = cert.subject?.CN ?? host;
      return `certificate for ${subject} verified${tls.insecureSkipVerify ? ' NOT (insecureSkipVerify)' : ''}, expires in ${days} days`;
    }),
  );
  return steps;
}

async function handshake(host: string, port: number, tls: EndpointTls): Promise<PeerCertificate> {
  const ca = tls.caFile === undefined ? undefined : await readFile(tls.caFile, 'utf8');
  const servername = tls.serverName ?? (/^[\d.:]+$/.test(host) ? undefined : host);
  return await new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      // SNI carries names only, never an IP address.
      ...(servername !== undefined ? { servername } : {}),
      rejectUnauthorized: !tls.insecureSkipVerify,
      ...(ca !== undefined ? { ca } : {}),
      timeout: TIMEOUT_MS,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`no TLS handshake with ${host}:${port} within ${TIMEOUT_MS / 1000}s`));
    });
    socket.once('error', (error) => reject(new Error(`TLS with ${host}:${port}: ${error.message}`)));
  });
}
