import { readFile } from 'node:fs/promises';
import { ProviderError } from '../../errors.ts';
import { ExchangedTokenSource, type ExchangeFlowOptions, type MintedToken } from './token-endpoint.ts';
import type { AccessTokenSource } from './token-source.ts';

/** What stackit-sdk-go's workload identity flow sends (core/clients/workload_identity_flow.go). */
const GRANT_TYPE = 'client_credentials';
export const WORKLOAD_JWT_ASSERTION_TYPE = 'urn:schwarz:params:oauth:client-assertion-type:workload-jwt';
export const DEFAULT_WIF_TOKEN_ENDPOINT = 'https://accounts.stackit.cloud/oauth/v2/token';
export const DEFAULT_FEDERATED_TOKEN_FILE = '/var/run/secrets/stackit.cloud/serviceaccount/token';
/** A projected service-account token is a few KiB; anything far larger is not one. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

export interface WorkloadIdentityOptions extends ExchangeFlowOptions {
  /** The STACKIT service account's e-mail, sent as `client_id`. */
  readonly serviceAccountEmail: string;
  /** The projected (federated) token; re-read at every exchange, because the kubelet rotates it. */
  readonly tokenFile: string;
}

/**
 * STACKIT's Workload Identity Federation (its recommended flow): the federated token a Kubernetes
 * projected volume (or another OIDC issuer) provides is exchanged at the IdP's token endpoint for a
 * short-lived STACKIT access token, which is cached and renewed like the key flow's. The file is read
 * afresh for every exchange, so a rotated token is used as soon as the kubelet writes it; nothing of it
 * is ever logged or put in a message.
 */
export class WorkloadIdentityTokenSource extends ExchangedTokenSource implements AccessTokenSource {
  readonly credentialId: string;
  readonly description: string;
  readonly #o: WorkloadIdentityOptions;

  constructor(options: WorkloadIdentityOptions) {
    super(options);
    this.#o = options;
    // The e-mail names the service account; it is not secret and stable across token rotations.
    this.credentialId = `wif-${options.serviceAccountEmail.toLowerCase()}`;
    this.description = `service account ${options.serviceAccountEmail} (workload identity, token file ${options.tokenFile})`;
  }

  protected async mint(): Promise<MintedToken> {
    const assertion = await this.#readFederatedToken();
    const form = new URLSearchParams({
      grant_type: GRANT_TYPE,
      client_assertion_type: WORKLOAD_JWT_ASSERTION_TYPE,
      client_assertion: assertion,
      client_id: this.#o.serviceAccountEmail,
    });
    const minted = await this.endpoint.exchange(
      form,
      this.description,
      () =>
        'check that the service account has a federated identity provider whose issuer, audience and subject match the projected token (on Kubernetes: system:serviceaccount:<namespace>:<name>), and that the token is not expired',
    );
    this.#o.log.info(
      { validForSeconds: Math.round((minted.expiresAtMs - this.now()) / 1000) },
      `access token minted for ${this.description}`,
    );
    return minted;
  }

  /** The current federated token; a missing or empty file is an error naming the file, not its content. */
  async #readFederatedToken(): Promise<string> {
    const where = `stackit provider "${this.#o.providerName}": workload identity token file ${this.#o.tokenFile}`;
    let text: string;
    try {
      const bytes = await readFile(this.#o.tokenFile);
      if (bytes.length > MAX_TOKEN_FILE_BYTES) throw new Error(`larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
      text = bytes.toString('utf8').trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ProviderError({
        provider: 'stackit',
        reason: 'unauthorized',
        // A projected volume appears shortly after start and is replaced atomically: worth another try.
        retryable: code === 'ENOENT',
        message: `${where}: cannot be read (${code ?? (error as Error).message}); is the service account token projected into the pod (STACKIT_FEDERATED_TOKEN_FILE)?`,
      });
    }
    if (text === '') {
      throw new ProviderError({
        provider: 'stackit',
        reason: 'unauthorized',
        retryable: true,
        message: `${where}: the file is empty`,
      });
    }
    return text;
  }
}
