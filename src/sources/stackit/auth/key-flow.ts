import { signAssertion } from './jwt.ts';
import type { ServiceAccountKey } from './service-account-key.ts';
import { ExchangedTokenSource, type ExchangeFlowOptions, type MintedToken } from './token-endpoint.ts';
import type { AccessTokenSource } from './token-source.ts';

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const KEY_NOT_FOUND = /Key with kid .*? was not found/i;

export interface KeyFlowOptions extends ExchangeFlowOptions {
  readonly key: ServiceAccountKey;
}

/**
 * STACKIT's service-account key flow: sign an RS512 assertion with the key, exchange it at the token
 * endpoint for a short-lived access token, cache that, and mint the next one before it expires. All
 * callers share one mint in flight. The token endpoint has its own HTTP client, so the assertion only
 * ever travels to the endpoint's origin, and the audit-log token only to the API's.
 */
export class KeyFlowTokenSource extends ExchangedTokenSource implements AccessTokenSource {
  readonly credentialId: string;
  readonly description: string;
  readonly #o: KeyFlowOptions;

  constructor(options: KeyFlowOptions) {
    super(options);
    this.#o = options;
    this.credentialId = `sa-${options.key.sub}`;
    this.description = `service account ${options.key.iss} (key ${options.key.kid})`;
  }

  protected async mint(): Promise<MintedToken> {
    const { key } = this.#o;
    const form = new URLSearchParams({ grant_type: GRANT_TYPE, assertion: signAssertion(key, this.now()) });
    const minted = await this.endpoint.exchange(form, this.description, (detail) =>
      KEY_NOT_FOUND.test(detail ?? '')
        ? 'the key was deleted or deactivated, or the token endpoint belongs to another STACKIT environment than the key'
        : 'check that the key is active and belongs to this service account, and that the clock is right (the assertion is valid for 10 minutes)',
    );
    this.#o.log.info(
      { kid: key.kid, validForSeconds: Math.round((minted.expiresAtMs - this.now()) / 1000) },
      `access token minted for ${this.description}`,
    );
    return minted;
  }
}
