// GetId and GetCredentialsForIdentity (awsJson1_1, unsigned as in the model): the default credential source.
import { sendAwsRequest, type AwsCredentials, type HttpExchange } from './signed-fetch.ts';

export type Logins = Record<string, string>;

export class CognitoIdentityApi {
  constructor(private readonly config: { endpoint: string; region: string; fetch: typeof fetch; exchange?: HttpExchange; answerTimeoutMs?: number | undefined }) {}

  private call<T>(operation: string, body: unknown, signal?: AbortSignal) {
    return sendAwsRequest<T>({
      method: 'POST',
      path: '/',
      endpoint: this.config.endpoint,
      region: this.config.region,
      service: 'cognito-identity',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSCognitoIdentityService.${operation}` },
      body,
      fetch: this.config.fetch,
      exchange: this.config.exchange,
      answerTimeoutMs: this.config.answerTimeoutMs,
      signal,
    });
  }

  async getId(identityPoolId: string, logins?: Logins, signal?: AbortSignal): Promise<string> {
    const result = await this.call<{ IdentityId?: string }>('GetId', { IdentityPoolId: identityPoolId, ...(logins && Object.keys(logins).length ? { Logins: logins } : {}) }, signal);
    if (!result.IdentityId) throw new Error('GetId answered without an IdentityId');
    return result.IdentityId;
  }

  async getCredentialsForIdentity(identityId: string, logins?: Logins, signal?: AbortSignal): Promise<AwsCredentials & { identityId: string }> {
    const result = await this.call<{ IdentityId?: string; Credentials?: { AccessKeyId?: string; SecretKey?: string; SessionToken?: string; Expiration?: number } }>(
      'GetCredentialsForIdentity',
      { IdentityId: identityId, ...(logins && Object.keys(logins).length ? { Logins: logins } : {}) },
      signal,
    );
    const c = result.Credentials;
    if (!c?.AccessKeyId || !c.SecretKey) throw new Error('GetCredentialsForIdentity answered without credentials');
    return {
      identityId: result.IdentityId ?? identityId,
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration === undefined ? undefined : new Date(Math.round(c.Expiration * 1000)),
    };
  }
}
