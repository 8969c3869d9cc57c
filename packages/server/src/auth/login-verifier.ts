// Turns a Logins map (provider name → token) into verified logins (provider, subject), or refuses with
// NotAuthorizedException. Verifiable providers: cognisync's own OpenID tokens (`cognito-identity.amazonaws.com`)
// and the pool's OpenID Connect providers (checked against the provider's JWKS). Social providers
// (graph.facebook.com, accounts.google.com, …) cannot be verified offline and are refused. A provider's tokens must
// be issued to one of its configured client ids (COGNISYNC_OIDC_CLIENT_IDS), as IAM's OIDC provider's ClientIDList.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { NotAuthorizedException } from '../errors.js';
import type { IdentityPoolRecord, Login } from '../store/store.js';
import type { OpenIdTokens } from './openid-tokens.js';

export const COGNITO_LOGIN_PROVIDER = 'cognito-identity.amazonaws.com';

const isLoopback = (host: string) => /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(host);

/** The OIDC provider names (ARN resource `oidc-provider/<name>`) a pool accepts. */
function oidcProviderNames(pool: IdentityPoolRecord): string[] {
  const arns = (pool.description.OpenIdConnectProviderARNs as string[] | undefined) ?? [];
  return arns.map((arn) => arn.split(':oidc-provider/')[1]).filter((name): name is string => Boolean(name));
}

/** How long a failed discovery of an issuer stands before the next login asks the issuer again. */
const DISCOVERY_RETRY_MS = 30_000;

export class LoginVerifier {
  /** Each issuer's key set, or its discovery under way or failed: one ask shared by every login meanwhile. */
  private readonly jwksByIssuer = new Map<string, Promise<ReturnType<typeof createRemoteJWKSet>>>();

  /** `clientIds`: per OIDC provider, the audiences its tokens must name (Config.oidcClientIds); others are unchecked. */
  constructor(
    private readonly openIdTokens: OpenIdTokens,
    private readonly clientIds: Readonly<Record<string, readonly string[]>> = {},
  ) {}

  /** Verifies every login of the map for the pool; the developer provider is refused (it is for developer calls). */
  async verify(pool: IdentityPoolRecord, logins: Record<string, string>): Promise<Login[]> {
    const verified: Login[] = [];
    for (const [providerName, token] of Object.entries(logins)) {
      if (providerName === COGNITO_LOGIN_PROVIDER) {
        const verifiedToken = await this.openIdTokens.verify(token, pool.identityPoolId);
        if (!verifiedToken) throw new NotAuthorizedException('Invalid login token. Not a valid OpenId Connect identity token.');
        verified.push({ providerName, userIdentifier: verifiedToken.identityId, issuedAt: verifiedToken.issuedAt, authenticated: verifiedToken.authenticated });
      } else {
        verified.push({ providerName, userIdentifier: await this.verifyOne(pool, providerName, token) });
      }
    }
    return verified;
  }

  private async verifyOne(pool: IdentityPoolRecord, providerName: string, token: string): Promise<string> {
    if (providerName === pool.description.DeveloperProviderName) {
      throw new NotAuthorizedException(`Logins for the developer provider ${providerName} are made with GetOpenIdTokenForDeveloperIdentity.`);
    }
    if (oidcProviderNames(pool).includes(providerName)) return this.verifyOidc(providerName, token);
    const social = (pool.description.SupportedLoginProviders as Record<string, string> | undefined) ?? {};
    if (Object.hasOwn(social, providerName)) {
      throw new NotAuthorizedException(`Invalid login token. cognisync cannot verify ${providerName} tokens; use an OpenID Connect provider or developer-authenticated identities.`);
    }
    throw new NotAuthorizedException(`Invalid login token. Login provider ${providerName} is not configured for identity pool ${pool.identityPoolId}.`);
  }

  private async verifyOidc(providerName: string, token: string): Promise<string> {
    const host = providerName.split('/')[0]!;
    // Loopback providers may use plain http (local development and tests); everything else is https.
    const issuer = `${isLoopback(host) ? 'http' : 'https'}://${providerName}`;
    try {
      // A token the provider issued to another of its client apps signs in here only if no client ids are configured.
      const audience = Object.hasOwn(this.clientIds, providerName) ? [...this.clientIds[providerName]!] : undefined;
      const { payload } = await jwtVerify(token, await this.jwks(issuer), { issuer, ...(audience ? { audience } : {}) });
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('no sub claim');
      return payload.sub;
    } catch (error) {
      throw new NotAuthorizedException(`Invalid login token. ${(error as Error).message}`);
    }
  }

  /**
   * The issuer's key set, from its discovery document. Asked once for all the logins that need it at the same time,
   * and a failure stands for DISCOVERY_RETRY_MS: before, every login asked again, each waiting up to 5 s for an issuer
   * that was down, unsigned calls included (which count against no rate until they succeed; QA).
   */
  private jwks(issuer: string): Promise<ReturnType<typeof createRemoteJWKSet>> {
    let jwks = this.jwksByIssuer.get(issuer);
    if (!jwks) {
      const discovery = discover(issuer);
      this.jwksByIssuer.set(issuer, discovery);
      discovery.catch(() => {
        setTimeout(() => {
          if (this.jwksByIssuer.get(issuer) === discovery) this.jwksByIssuer.delete(issuer);
        }, DISCOVERY_RETRY_MS).unref();
      });
      jwks = discovery;
    }
    return jwks;
  }
}

async function discover(issuer: string): Promise<ReturnType<typeof createRemoteJWKSet>> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`OpenID configuration of ${issuer} answered ${response.status}`);
  const { jwks_uri: jwksUri } = (await response.json()) as { jwks_uri?: string };
  if (!jwksUri) throw new Error(`OpenID configuration of ${issuer} has no jwks_uri`);
  return createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: 5000 });
}
