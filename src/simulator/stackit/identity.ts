/**
 * STACKIT's service-account key flow, simulated: the token endpoint (`POST /token`, RFC 7523 JWT
 * bearer grant) verifies the assertion's RS512 signature against the public key registered for its
 * `kid`, checks `iss`, `sub`, `aud`, `iat` and `exp`, and issues short-lived access tokens that the
 * simulated Audit Log and Resource Manager APIs accept. Errors follow the service-account API's shapes
 * (research/providers.md §2.3): 400 `ErrorResponse`, 401/403 `AuthError`. Keys can be created (the
 * simulator generates the pair, as STACKIT does), registered (a user-provided public key) and deleted,
 * and issued tokens revoked, to drive every failure the shipper must survive.
 *
 * Workload Identity Federation too (`POST /oauth/v2/token`, as stackit-sdk-go's workload identity flow
 * calls it): `federate()` trusts an OIDC issuer (a Kubernetes cluster) for a service account and returns
 * that issuer, which mints projected tokens as the kubelet would; the endpoint verifies the token's RS256
 * signature, issuer, audience, subject and expiry and answers OAuth 2.0 errors (RFC 6749 §5.2).
 */
import {
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  verify,
} from 'node:crypto';
import type { SimClock } from '../clock.ts';
import type { FaultInjector } from '../faults.ts';
import { formatRfc3339Ms } from '../rfc3339.ts';
import type { Route, RouteContext, SimModule, SimReply, SimResponse } from '../server.ts';

export const STACKIT_SIM_AUDIENCE = 'https://stackit-service-account-prod.apps.01.cf.eu01.stackit.cloud';
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Assertions valid longer than this are refused (STACKIT's docs use 10 minutes; the Go SDK 1 hour). */
const MAX_ASSERTION_LIFETIME_S = 3_600;
/** Tolerated clock difference for `iat`. */
const CLOCK_LEEWAY_S = 60;
const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const WIF_GRANT_TYPE = 'client_credentials';
const WIF_ASSERTION_TYPE = 'urn:schwarz:params:oauth:client-assertion-type:workload-jwt';
/** The audience STACKIT's federation expects by default (stackit-pod-identity-webhook). */
export const STACKIT_WIF_AUDIENCE = 'sts.accounts.stackit.cloud';

/** A trusted OIDC issuer of one service account: what STACKIT calls a federated identity provider. */
interface Federation {
  readonly serviceAccountId: string;
  readonly issuer: string;
  readonly audience: string;
  readonly subject: string;
  readonly publicKey: KeyObject;
}

/** An OIDC issuer the simulator plays (a cluster's service-account issuer): it mints projected tokens. */
export interface WorkloadIssuer {
  readonly serviceAccountEmail: string;
  readonly serviceAccountId: string;
  readonly issuer: string;
  readonly subject: string;
  /** A projected token (RS256 JWT) as the kubelet writes it; override claims to forge wrong ones. */
  issueToken(options?: { ttlMs?: number; subject?: string; audience?: string; issuer?: string }): string;
}

/** The key document STACKIT returns on key creation (`CreateServiceAccountKeyResponse`). */
export interface ServiceAccountKeyDocument {
  readonly id: string;
  readonly publicKey: string;
  readonly createdAt: string;
  readonly validUntil?: string;
  readonly keyType: 'USER_MANAGED';
  readonly keyOrigin: 'GENERATED' | 'USER_PROVIDED';
  readonly keyAlgorithm: 'RSA_2048';
  readonly active: boolean;
  readonly credentials: {
    readonly kid: string;
    readonly iss: string;
    readonly sub: string;
    readonly aud: string;
    readonly privateKey?: string;
    readonly tokenEndpoint?: string;
  };
}

interface RegisteredKey {
  readonly kid: string;
  readonly iss: string;
  readonly sub: string;
  readonly aud: string;
  readonly publicKey: KeyObject;
  active: boolean;
}

interface IssuedToken {
  readonly principal: string;
  readonly expiresAtMs: number;
}

export interface IdentityOptions {
  /** The static bearer token the APIs accept besides issued ones (default `sim-token`). */
  readonly staticToken?: string | undefined;
  /** Lifetime of issued access tokens (default 1 h, as the spec's example). */
  readonly accessTokenTtlMs?: number | undefined;
}

export interface IdentityDeps {
  readonly clock: SimClock;
  /** Faults of the token endpoint (its own queue, so audit-log fault tests are not disturbed). */
  readonly faults: FaultInjector;
}

export interface IdentityStats {
  /** Access tokens issued. */
  readonly issued: number;
  /** Token requests refused, by reason. */
  readonly refused: Readonly<Record<string, number>>;
  /** Requests to the APIs refused for an unknown, expired or revoked bearer token. */
  readonly unauthorized: number;
}

/** Who a bearer token belongs to: `sa:<service account id>`, or `token:<static>`; budgets count per principal. */
export type Principal = string;

export class StackitIdentity implements SimModule {
  readonly name = 'stackit.service-account';
  readonly routes: readonly Route[];
  /** Lifetime of access tokens issued from now on. */
  accessTokenTtlMs: number;
  /** Base URL of the simulator, set once it listens (for `tokenEndpoint` in created keys). */
  baseUrl = '';
  #staticToken: string;
  readonly #deps: IdentityDeps;
  readonly #keys = new Map<string, RegisteredKey>();
  /** Federations by service account e-mail (lower-case). */
  readonly #federations = new Map<string, Federation[]>();
  readonly #tokens = new Map<string, IssuedToken>();
  readonly #secret = randomBytes(32);
  readonly #disabled = new Set<string>();
  readonly #assertions: string[] = [];
  readonly #accessTokens: string[] = [];
  #issued = 0;
  #unauthorized = 0;
  readonly #refused: Record<string, number> = {};

  constructor(options: IdentityOptions, deps: IdentityDeps) {
    this.#deps = deps;
    this.#staticToken = options.staticToken ?? 'sim-token';
    this.accessTokenTtlMs = options.accessTokenTtlMs ?? 3_600_000;
    this.routes = [
      {
        name: 'stackit.token',
        methods: ['POST'],
        path: /^\/token$/,
        handle: (ctx) => this.#tokenRoute(ctx, (c) => this.#exchange(c)),
      },
      {
        name: 'stackit.wif-token',
        methods: ['POST'],
        path: /^\/oauth\/v2\/token$/,
        handle: (ctx) => this.#tokenRoute(ctx, (c) => this.#exchangeFederated(c)),
      },
    ];
  }

  get staticToken(): string {
    return this.#staticToken;
  }

  set staticToken(value: string) {
    this.#staticToken = value;
  }

  get tokenUrl(): string {
    return `${this.baseUrl}/token`;
  }

  /** The workload identity federation endpoint (`auth.workloadIdentity.tokenEndpoint`). */
  get federatedTokenUrl(): string {
    return `${this.baseUrl}/oauth/v2/token`;
  }

  /**
   * Trusts a new OIDC issuer for a service account (by default a fresh one), for tokens with `subject`
   * (default `system:serviceaccount:auditlog:auditlog-shipper`) and the STACKIT audience.
   */
  federate(
    options: {
      email?: string;
      serviceAccountId?: string;
      issuer?: string;
      subject?: string;
      audience?: string;
    } = {},
  ): WorkloadIssuer {
    const serviceAccountId = options.serviceAccountId ?? randomUUID();
    const serviceAccountEmail = options.email ?? `sa-${serviceAccountId.slice(0, 8)}@sa.stackit.cloud`;
    const issuer = options.issuer ?? `https://oidc.cluster-${randomUUID().slice(0, 8)}.example`;
    const subject = options.subject ?? 'system:serviceaccount:auditlog:auditlog-shipper';
    const audience = options.audience ?? STACKIT_WIF_AUDIENCE;
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const federation: Federation = { serviceAccountId, issuer, audience, subject, publicKey };
    const key = serviceAccountEmail.toLowerCase();
    this.#federations.set(key, [...(this.#federations.get(key) ?? []), federation]);
    const clock = this.#deps.clock;
    return {
      serviceAccountEmail,
      serviceAccountId,
      issuer,
      subject,
      issueToken: (claims = {}) => {
        const iat = Math.floor(clock.simNow() / 1000);
        const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'sim' })).toString(
          'base64url',
        );
        const payload = Buffer.from(
          JSON.stringify({
            iss: claims.issuer ?? issuer,
            sub: claims.subject ?? subject,
            aud: [claims.audience ?? audience],
            iat,
            nbf: iat,
            exp: iat + Math.floor((claims.ttlMs ?? 3_600_000) / 1000),
            jti: randomUUID(),
          }),
        ).toString('base64url');
        const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey).toString(
          'base64url',
        );
        return `${header}.${payload}.${signature}`;
      },
    };
  }

  /**
   * A new key for a service account, generated here like STACKIT's "create key" (the document carries
   * the private key, shown once). `email` defaults to a fresh `…@sa.stackit.cloud`.
   */
  createKey(
    options: {
      email?: string;
      serviceAccountId?: string;
      validUntil?: string;
      withTokenEndpoint?: boolean;
    } = {},
  ): ServiceAccountKeyDocument {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const document = this.registerKey({
      publicKeyPem: publicPem,
      ...(options.email ? { email: options.email } : {}),
      ...(options.serviceAccountId ? { serviceAccountId: options.serviceAccountId } : {}),
      ...(options.validUntil ? { validUntil: options.validUntil } : {}),
      ...(options.withTokenEndpoint ? { withTokenEndpoint: true } : {}),
    });
    return {
      ...document,
      keyOrigin: 'GENERATED',
      credentials: {
        ...document.credentials,
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    };
  }

  /** Registers a public key the user generated (`keyOrigin: USER_PROVIDED`): no private key in the document. */
  registerKey(options: {
    publicKeyPem: string;
    email?: string;
    serviceAccountId?: string;
    validUntil?: string;
    withTokenEndpoint?: boolean;
  }): ServiceAccountKeyDocument {
    const sub = options.serviceAccountId ?? randomUUID();
    const iss = options.email ?? `sa-${sub.slice(0, 8)}@sa.stackit.cloud`;
    const kid = randomUUID();
    this.#keys.set(kid, {
      kid,
      iss,
      sub,
      aud: STACKIT_SIM_AUDIENCE,
      publicKey: createPublicKey(options.publicKeyPem),
      active: true,
    });
    return {
      id: kid,
      publicKey: options.publicKeyPem,
      createdAt: formatRfc3339Ms(this.#deps.clock.simNow()),
      ...(options.validUntil ? { validUntil: options.validUntil } : {}),
      keyType: 'USER_MANAGED',
      keyOrigin: 'USER_PROVIDED',
      keyAlgorithm: 'RSA_2048',
      active: true,
      credentials: {
        kid,
        iss,
        sub,
        aud: STACKIT_SIM_AUDIENCE,
        ...(options.withTokenEndpoint ? { tokenEndpoint: this.tokenUrl } : {}),
      },
    };
  }

  /** Deletes a key: assertions signed with it get "Key with kid … was not found". */
  deleteKey(kid: string): boolean {
    return this.#keys.delete(kid);
  }

  /** Deactivates or reactivates a key (a deactivated key is refused with 403). */
  setKeyActive(kid: string, active: boolean): void {
    const key = this.#keys.get(kid);
    if (!key) throw new Error(`no key ${kid}`);
    key.active = active;
  }

  /**
   * A disabled service account: its keys still mint tokens, but the APIs answer 401 to them (a fresh
   * token does not help; the shipper must fail loudly instead of looping).
   */
  setServiceAccountEnabled(serviceAccountId: string, enabled: boolean): void {
    if (enabled) this.#disabled.delete(`sa:${serviceAccountId}`);
    else this.#disabled.add(`sa:${serviceAccountId}`);
  }

  /**
   * The last assertions received and access tokens issued (at most 100 each), so tests can prove that
   * none of them ever reaches a log line.
   */
  credentialsSeen(): { assertions: string[]; accessTokens: string[] } {
    return { assertions: [...this.#assertions], accessTokens: [...this.#accessTokens] };
  }

  /** Revokes every issued access token: the APIs answer 401 to them from now on. */
  revokeAccessTokens(): number {
    const n = this.#tokens.size;
    this.#tokens.clear();
    return n;
  }

  stats(): IdentityStats {
    return { issued: this.#issued, refused: { ...this.#refused }, unauthorized: this.#unauthorized };
  }

  /**
   * Who an `Authorization` header belongs to, or undefined when the APIs must answer 401: the static
   * token, or an issued access token that has not expired or been revoked.
   */
  authorize(header: string | undefined): Principal | undefined {
    const presented = header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (presented !== undefined && presented === this.#staticToken) return `token:${presented}`;
    const issued = presented === undefined ? undefined : this.#tokens.get(presented);
    if (
      issued !== undefined &&
      issued.expiresAtMs > this.#deps.clock.simNow() &&
      !this.#disabled.has(issued.principal)
    ) {
      return issued.principal;
    }
    this.#unauthorized++;
    return undefined;
  }

  // ---------------------------------------------------------------- the token endpoint

  #tokenRoute(ctx: RouteContext, exchange: (ctx: RouteContext) => SimResponse): SimReply {
    ctx.observe({
      route: ctx.url.pathname === '/token' ? 'stackit.token' : 'stackit.wif-token',
      scope: null,
      scopeKey: null,
      startRange: null,
      endRange: null,
      limit: null,
      cursorPresent: false,
      simNowMs: this.#deps.clock.simNow(),
    });
    const fault = this.#deps.faults.next();
    if (fault?.type === 'reset') return { reset: true };
    if (fault?.type === 'status') {
      return jsonReply(fault.status, { message: 'Service Unavailable', status: String(fault.status) });
    }
    const reply = exchange(ctx);
    return fault?.type === 'slow' ? { ...reply, delayMs: fault.delayMs } : reply;
  }

  #exchange(ctx: RouteContext): SimResponse {
    const path = ctx.url.pathname;
    const type = String(ctx.req.headers['content-type'] ?? '');
    if (!type.startsWith('application/x-www-form-urlencoded')) {
      return this.#bad(path, 'content_type', 'Content-Type must be application/x-www-form-urlencoded');
    }
    const form = new URLSearchParams(ctx.body);
    const grant = form.get('grant_type');
    if (grant !== GRANT_TYPE) {
      return this.#bad(path, 'grant_type', `unsupported grant_type ${JSON.stringify(grant)}`);
    }
    const assertion = form.get('assertion');
    if (!assertion) return this.#bad(path, 'assertion', 'assertion is required for the jwt-bearer grant');
    remember(this.#assertions, assertion);
    const parts = assertion.split('.');
    if (parts.length !== 3) return this.#bad(path, 'malformed', 'assertion is not a JWT');
    const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
    const header = decodeSegment(headerPart);
    const claims = decodeSegment(claimsPart);
    if (header === undefined || claims === undefined) {
      return this.#bad(path, 'malformed', 'assertion is not a JWT');
    }
    if (header.alg !== 'RS512') {
      return this.#bad(path, 'alg', `unsupported signing algorithm ${JSON.stringify(header.alg)}`);
    }
    const kid = typeof header.kid === 'string' ? header.kid : '';
    const key = this.#keys.get(kid);
    if (key === undefined) return this.#bad(path, 'unknown_kid', `Key with kid ${kid} was not found`);
    const signature = Buffer.from(signaturePart, 'base64url');
    const valid = verify('sha512', Buffer.from(`${headerPart}.${claimsPart}`), key.publicKey, signature);
    if (!valid) return this.#bad(path, 'signature', 'assertion signature is invalid');
    if (!key.active) {
      this.#count('inactive');
      return jsonReply(403, {
        error: { code: 403, message: 'The request could not be performed', status: 'Forbidden' },
      });
    }
    const nowS = Math.floor(this.#deps.clock.simNow() / 1000);
    for (const claim of ['iss', 'sub', 'aud'] as const) {
      if (claims[claim] !== key[claim]) {
        return this.#bad(path, claim, `claim ${claim} does not match the key`);
      }
    }
    const iat = claims.iat;
    const exp = claims.exp;
    if (typeof iat !== 'number' || typeof exp !== 'number') {
      return this.#bad(path, 'claims', 'claims iat and exp are required');
    }
    if (typeof claims.jti !== 'string' || claims.jti === '') {
      return this.#bad(path, 'claims', 'claim jti is required');
    }
    if (exp <= nowS) return this.#bad(path, 'expired', 'assertion is expired');
    if (iat > nowS + CLOCK_LEEWAY_S) return this.#bad(path, 'iat', 'assertion is issued in the future');
    if (exp - iat > MAX_ASSERTION_LIFETIME_S) {
      return this.#bad(path, 'lifetime', `assertion lifetime exceeds ${MAX_ASSERTION_LIFETIME_S} s`);
    }

    return this.#issue(key.sub);
  }

  /** An access token for a service account, in the token endpoint's answer. */
  #issue(serviceAccountId: string): SimResponse {
    const nowMs = this.#deps.clock.simNow();
    const ttlMs = Math.max(1_000, this.accessTokenTtlMs);
    const token = this.#sign({
      iss: 'stackit-simulator',
      sub: serviceAccountId,
      iat: Math.floor(nowMs / 1000),
      exp: Math.floor((nowMs + ttlMs) / 1000),
      jti: randomUUID(),
    });
    this.#prune(nowMs);
    this.#tokens.set(token, { principal: `sa:${serviceAccountId}`, expiresAtMs: nowMs + ttlMs });
    remember(this.#accessTokens, token);
    this.#issued++;
    return jsonReply(200, {
      access_token: token,
      expires_in: Math.floor(ttlMs / 1000),
      refresh_token: randomBytes(24).toString('base64url'),
      scope: '',
      token_type: 'Bearer',
    });
  }

  /** Workload identity federation: a projected token of a trusted issuer for the service account. */
  #exchangeFederated(ctx: RouteContext): SimResponse {
    const type = String(ctx.req.headers['content-type'] ?? '');
    if (!type.startsWith('application/x-www-form-urlencoded')) {
      return this.#oauthError(
        400,
        'invalid_request',
        'Content-Type must be application/x-www-form-urlencoded',
      );
    }
    const form = new URLSearchParams(ctx.body);
    const grant = form.get('grant_type');
    if (grant !== WIF_GRANT_TYPE) {
      return this.#oauthError(
        400,
        'unsupported_grant_type',
        `unsupported grant_type ${JSON.stringify(grant)}`,
      );
    }
    if (form.get('client_assertion_type') !== WIF_ASSERTION_TYPE) {
      return this.#oauthError(400, 'invalid_request', 'unsupported client_assertion_type');
    }
    const assertion = form.get('client_assertion');
    const clientId = form.get('client_id');
    if (!assertion || !clientId) {
      return this.#oauthError(400, 'invalid_request', 'client_assertion and client_id are required');
    }
    remember(this.#assertions, assertion);
    const federations = this.#federations.get(clientId.toLowerCase()) ?? [];
    if (federations.length === 0) {
      return this.#oauthError(401, 'invalid_client', `no federated identity provider for ${clientId}`);
    }
    const parts = assertion.split('.');
    const header = parts.length === 3 ? decodeSegment(parts[0] as string) : undefined;
    const claims = parts.length === 3 ? decodeSegment(parts[1] as string) : undefined;
    if (header === undefined || claims === undefined) {
      return this.#oauthError(401, 'invalid_client', 'client_assertion is not a JWT');
    }
    if (header.alg !== 'RS256')
      return this.#oauthError(401, 'invalid_client', 'unsupported signing algorithm');
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2] as string, 'base64url');
    const trusted = federations.find((f) => f.issuer === claims.iss);
    if (trusted === undefined) return this.#oauthError(401, 'invalid_client', 'issuer is not trusted');
    if (!verify('sha256', signed, trusted.publicKey, signature)) {
      return this.#oauthError(401, 'invalid_client', 'client_assertion signature is invalid');
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(trusted.audience))
      return this.#oauthError(401, 'invalid_client', 'audience mismatch');
    if (claims.sub !== trusted.subject) return this.#oauthError(401, 'invalid_client', 'subject mismatch');
    const nowS = Math.floor(this.#deps.clock.simNow() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= nowS) {
      return this.#oauthError(401, 'invalid_client', 'client_assertion is expired');
    }
    return this.#issue(trusted.serviceAccountId);
  }

  /** RFC 6749 §5.2. */
  #oauthError(status: number, error: string, description: string): SimResponse {
    this.#count(`wif_${error}`);
    return jsonReply(status, { error, error_description: description });
  }

  /** Issued tokens are JWTs (HS256 with the simulator's secret), like STACKIT's, so clients can read `exp`. */
  #sign(claims: Record<string, unknown>): string {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const mac = createHmac('sha256', this.#secret).update(`${header}.${payload}`).digest('base64url');
    return `${header}.${payload}.${mac}`;
  }

  #prune(nowMs: number): void {
    if (this.#tokens.size < 1_000) return;
    for (const [token, issued] of this.#tokens) if (issued.expiresAtMs <= nowMs) this.#tokens.delete(token);
  }

  #count(reason: string): void {
    this.#refused[reason] = (this.#refused[reason] ?? 0) + 1;
  }

  /** The service-account API's 400 `ErrorResponse`. */
  #bad(path: string, reason: string, message: string): SimResponse {
    this.#count(reason);
    return jsonReply(400, {
      error: 'Bad Request',
      message,
      path,
      status: 400,
      timeStamp: formatRfc3339Ms(this.#deps.clock.simNow()),
    });
  }
}

function remember(list: string[], value: string): void {
  list.push(value);
  if (list.length > 100) list.shift();
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function jsonReply(status: number, value: unknown): SimResponse {
  return { status, headers: JSON_HEADERS, body: JSON.stringify(value) };
}
