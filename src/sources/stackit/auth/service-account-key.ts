import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { z } from 'zod';
import { registerSecretValue } from '../../../config/redact.ts';

/**
 * A STACKIT service-account key: the JSON the service-account API returns when a key is created
 * (research/providers.md §2.1). Only `credentials.{kid, iss, sub, aud}` are required; the private key is
 * in `credentials.privateKey` when STACKIT generated the pair, or supplied separately for a key pair the
 * user brought. Unknown fields are tolerated: the API adds fields over time.
 */

export const DEFAULT_TOKEN_ENDPOINT = 'https://service-account.api.stackit.cloud/token';

const nonEmpty = z.string().trim().min(1);

const keyDocumentSchema = z.object({
  id: z.string().optional(),
  publicKey: z.string().optional(),
  active: z.boolean().optional(),
  validUntil: z.string().nullish(),
  keyAlgorithm: z.string().optional(),
  credentials: z.object({
    kid: nonEmpty,
    iss: nonEmpty,
    sub: nonEmpty,
    aud: nonEmpty,
    privateKey: z.string().optional(),
    tokenEndpoint: z
      .string()
      .refine((value) => isHttpUrl(value), 'must be an http(s) URL')
      .optional(),
  }),
});

/** Everything needed to sign an assertion. Renders without key material in logs, JSON and inspect. */
export class ServiceAccountKey {
  readonly kid: string;
  /** The service account's e-mail. */
  readonly iss: string;
  /** The service account's id. */
  readonly sub: string;
  readonly aud: string;
  /** From the key file, if it names one. */
  readonly tokenEndpoint: string | undefined;
  readonly validUntil: string | undefined;
  readonly active: boolean | undefined;
  /** Where the key came from, e.g. `file /run/secrets/sa.json`; safe to log. */
  readonly origin: string;
  readonly #privateKey: KeyObject;

  constructor(init: {
    kid: string;
    iss: string;
    sub: string;
    aud: string;
    tokenEndpoint: string | undefined;
    validUntil: string | undefined;
    active: boolean | undefined;
    origin: string;
    privateKey: KeyObject;
  }) {
    this.kid = init.kid;
    this.iss = init.iss;
    this.sub = init.sub;
    this.aud = init.aud;
    this.tokenEndpoint = init.tokenEndpoint;
    this.validUntil = init.validUntil;
    this.active = init.active;
    this.origin = init.origin;
    this.#privateKey = init.privateKey;
  }

  /** The signing key; only the assertion signer asks for it. */
  signingKey(): KeyObject {
    return this.#privateKey;
  }

  toString(): string {
    return `ServiceAccountKey(kid ${this.kid}, ${this.iss})`;
  }

  toJSON(): Record<string, string> {
    return { kid: this.kid, iss: this.iss, origin: this.origin, privateKey: '[redacted]' };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

export interface KeyIssue {
  /** Path inside the key document (`credentials.kid`), or `privateKey` for a separately supplied key. */
  readonly path: readonly string[];
  readonly message: string;
}

export interface KeyText {
  readonly text: string;
  /** Where it came from (`env X`, `file Y`); part of messages, never the value. */
  readonly origin: string;
}

export type ParsedKey = { ok: true; key: ServiceAccountKey } | { ok: false; issues: KeyIssue[] };

/**
 * Parses and checks a key document and, for a user-provided key pair, the separately supplied private
 * key. Every problem names the field; no message ever contains key material.
 */
export function parseServiceAccountKey(document: KeyText, separatePrivateKey?: KeyText): ParsedKey {
  let json: unknown;
  try {
    json = JSON.parse(document.text);
  } catch {
    // JSON.parse's own message quotes the text around the error: it could quote the private key.
    return { ok: false, issues: [{ path: [], message: `is not valid JSON (${document.origin})` }] };
  }
  const parsed = keyDocumentSchema.safeParse(json, { error: keyErrorMap });
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.error.issues.map((issue) => ({
        path: issue.path.map(String),
        message: `${issue.message} (${document.origin})`,
      })),
    };
  }
  const doc = parsed.data;
  const credentials = doc.credentials;

  let pem: KeyText;
  let pemPath: readonly string[];
  if (separatePrivateKey !== undefined) {
    pem = separatePrivateKey;
    pemPath = ['privateKey'];
  } else if (credentials.privateKey !== undefined && credentials.privateKey.trim() !== '') {
    pem = { text: credentials.privateKey, origin: document.origin };
    pemPath = ['credentials', 'privateKey'];
  } else {
    return {
      ok: false,
      issues: [
        {
          path: ['credentials', 'privateKey'],
          message:
            `is required: the key has no private key (a key pair you created yourself), so supply it with ` +
            `auth.privateKey or auth.privateKeyFile (${document.origin})`,
        },
      ],
    };
  }

  // The PEM as parsed out of the JSON document (real newlines): mask it too, should anything echo it.
  registerSecretValue(pem.text);
  const privateKey = readPrivateKey(pem);
  if (typeof privateKey === 'string') return { ok: false, issues: [{ path: pemPath, message: privateKey }] };
  const mismatch = publicKeyMismatch(doc.publicKey, privateKey, credentials.kid);
  if (mismatch !== undefined) return { ok: false, issues: [{ path: pemPath, message: mismatch }] };

  return {
    ok: true,
    key: new ServiceAccountKey({
      kid: credentials.kid,
      iss: credentials.iss,
      sub: credentials.sub,
      aud: credentials.aud,
      tokenEndpoint: credentials.tokenEndpoint,
      validUntil: doc.validUntil ?? undefined,
      active: doc.active,
      origin: document.origin,
      privateKey,
    }),
  };
}

/**
 * PEM as people paste it: JSON-escaped newlines left as a literal backslash-n (STACKIT's own docs script
 * converts them), Windows line ends, surrounding whitespace.
 */
export function normalizePem(text: string): string {
  return `${text
    .replace(/\\r\\n|\\n/g, '\n')
    .replace(/\r\n/g, '\n')
    .trim()}\n`;
}

function readPrivateKey(pem: KeyText): KeyObject | string {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: normalizePem(pem.text), format: 'pem' });
  } catch {
    return `is not a PEM-encoded private key (${pem.origin}); expected "-----BEGIN PRIVATE KEY-----" or "-----BEGIN RSA PRIVATE KEY-----"`;
  }
  if (key.asymmetricKeyType !== 'rsa') {
    return `must be an RSA private key, got ${key.asymmetricKeyType ?? 'an unknown type'} (${pem.origin}); STACKIT assertions are signed with RS512`;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== undefined && bits < 2048) {
    return `is a ${bits}-bit RSA key (${pem.origin}); STACKIT keys are at least 2048 bits`;
  }
  return key;
}

/**
 * A private key that does not belong to the key's public key is the classic mistake with user-provided
 * pairs; the token endpoint would only say "invalid signature". Caught here instead, by comparing the
 * public halves. An unreadable `publicKey` is not our business and is ignored.
 */
function publicKeyMismatch(
  publicKey: string | undefined,
  privateKey: KeyObject,
  kid: string,
): string | undefined {
  if (publicKey === undefined || publicKey.trim() === '') return undefined;
  let registered: KeyObject;
  try {
    const pem = normalizePem(publicKey);
    registered = pem.includes('CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
  } catch {
    return undefined;
  }
  const ours = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const theirs = registered.export({ type: 'spki', format: 'der' });
  return ours.equals(theirs)
    ? undefined
    : `does not belong to this service-account key: its public half differs from the key's publicKey (kid ${kid})`;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Messages in the words of the config errors; never the value. */
const keyErrorMap: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'is required';
    return `must be ${issue.expected === 'object' ? 'an object' : `a ${issue.expected}`}`;
  }
  if (issue.code === 'too_small') return 'must not be empty';
  return undefined;
};
