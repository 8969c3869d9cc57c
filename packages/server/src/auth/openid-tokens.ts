// OpenID Connect tokens for identities (GetOpenIdToken*): RS256 JWTs signed with a server key (jose).
// The private key is stored in the database sealed with AES-256-GCM under the master key; the public
// half is served as a JWKS so anyone can verify the tokens.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import type { Store } from '../store/store.js';
import { seal, unseal } from './sealing.js';

const SETTING = 'openid-signing-key';
const ALG = 'RS256';

export interface OpenIdClaims {
  identityPoolId: string;
  identityId: string;
  /** `authenticated` / `unauthenticated` followed by the login providers, as AWS's `amr` claim. */
  amr: string[];
  /** PrincipalTags of GetOpenIdTokenForDeveloperIdentity, in AWS's session-tags claim. */
  principalTags?: Record<string, string>;
}

/**
 * The issue time to the millisecond (`iat` has whole seconds): an unlink voids the identity's earlier tokens
 * (identity-access.ts, predatesUnlink), and a token the developer issues in the same second, after re-linking the
 * identity, must still count. Tokens from before this claim existed fall back to `iat`.
 */
const ISSUED_AT_MS_CLAIM = 'https://cognisync/iat_ms';

export class OpenIdTokens {
  private constructor(
    private readonly privateKey: CryptoKey | Uint8Array,
    private readonly publicKey: CryptoKey | Uint8Array,
    private readonly publicJwk: JWK,
    readonly issuer: string,
  ) {}

  /** Loads the signing key from the store, creating and sealing one on first start. */
  static async load(store: Store, masterKey: Buffer, issuer: string): Promise<OpenIdTokens> {
    const candidate = await (async () => {
      const { privateKey } = await generateKeyPair(ALG, { extractable: true });
      const jwk = await exportJWK(privateKey);
      jwk.kid = await calculateJwkThumbprint(jwk);
      return seal(masterKey, 'openid-signing-key', JSON.stringify(jwk));
    })();
    const sealed = await store.getOrCreateSetting(SETTING, candidate);
    let privateJwk: JWK;
    try {
      privateJwk = JSON.parse(unseal(masterKey, 'openid-signing-key', sealed)) as JWK;
    } catch {
      throw new Error('The OpenID signing key in the database was sealed with another master key (check COGNISYNC_MASTER_KEY)');
    }
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = privateJwk;
    const publicKey = await importJWK({ ...publicJwk, alg: ALG }, ALG);
    return new OpenIdTokens(await importJWK(privateJwk, ALG), publicKey, { ...publicJwk, alg: ALG, use: 'sig' }, issuer);
  }

  /** The JWKS document (`/.well-known/jwks.json`). */
  jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  async issue(claims: OpenIdClaims, ttlSeconds: number, now: number): Promise<string> {
    const tags = claims.principalTags && Object.keys(claims.principalTags).length > 0
      ? { 'https://aws.amazon.com/tags': { principal_tags: Object.fromEntries(Object.entries(claims.principalTags).map(([k, v]) => [k, [v]])) } }
      : {};
    return new SignJWT({ amr: claims.amr, ...tags, [ISSUED_AT_MS_CLAIM]: now })
      .setProtectedHeader({ alg: ALG, kid: this.publicJwk.kid!, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(claims.identityId)
      .setAudience(claims.identityPoolId)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + ttlSeconds)
      .sign(this.privateKey);
  }

  /**
   * The identity a token of the pool was issued for, when (epoch ms, to the second) and whether the identity was
   * authenticated then (its `amr`); undefined if it is not one.
   * Any issuer is taken: only this deployment holds the key, and each process names itself the issuer when
   * COGNISYNC_PUBLIC_URL is unset, so a token one process issued must verify on every other (and after the URL
   * changed).
   */
  async verify(token: string, identityPoolId: string): Promise<{ identityId: string; issuedAt: number; authenticated: boolean } | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, { audience: identityPoolId, algorithms: [ALG] });
      const issuedAtMs = payload[ISSUED_AT_MS_CLAIM];
      const issuedAt = typeof issuedAtMs === 'number' ? issuedAtMs : (payload.iat ?? 0) * 1000;
      const authenticated = Array.isArray(payload.amr) && payload.amr[0] === 'authenticated';
      return typeof payload.sub === 'string' ? { identityId: payload.sub, issuedAt, authenticated } : undefined;
    } catch {
      return undefined;
    }
  }
}
