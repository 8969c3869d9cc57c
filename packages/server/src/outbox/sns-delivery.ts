// Delivers `push` outbox entries through Amazon SNS (@aws-sdk/client-sns; endpoint from COGNISYNC_SNS_ENDPOINT,
// credentials from the standard AWS chain): the device token becomes a platform endpoint of the pool's
// platform application (CreatePlatformEndpoint, see endpointFor), then a silent Publish carries AWS's
// push-sync message. A disabled endpoint means a dead token: the device is unregistered. The SDK is loaded
// on first use, as few deployments configure push sync.
import type { SNSClient } from '@aws-sdk/client-sns';
import type { ClaimedOutboxEntry } from '../store/store.js';
import type { PushMessage, PushPayload } from './entries.js';
import { LazyAwsClient } from './lazy-aws-client.js';

const loadSnsSdk = () => import('@aws-sdk/client-sns');

export type PushOutcome = { outboxId: number } & ({ result: 'delivered' } | { result: 'dead-token'; payload: PushPayload } | { result: 'failed'; error: string });

/** The per-platform bodies of a silent data notification, as SNS's MessageStructure "json" expects. */
export function pushMessageBody(platform: string, message: PushMessage): string {
  const data = JSON.stringify({ data: message });
  const apns = JSON.stringify({ aps: { 'content-available': 1 }, ...message });
  return JSON.stringify({ default: JSON.stringify(message), GCM: data, ADM: data, [platform === 'APNS_SANDBOX' ? 'APNS_SANDBOX' : 'APNS']: apns });
}

export class SnsDelivery {
  private readonly sns: LazyAwsClient<Awaited<ReturnType<typeof loadSnsSdk>>, SNSClient>;
  /** Endpoint ARNs by application and token; CreatePlatformEndpoint is idempotent, this just saves a call. */
  private readonly endpoints = new Map<string, string>();

  constructor(options: { region: string; endpoint?: string; timeoutMs?: number }) {
    this.sns = new LazyAwsClient(loadSnsSdk, (sdk, config) => new sdk.SNSClient(config), { ...options, timeoutMs: options.timeoutMs ?? 10_000 });
  }

  async deliverOne(entry: ClaimedOutboxEntry): Promise<PushOutcome> {
    const payload = entry.payload as PushPayload;
    const cacheKey = `${payload.applicationArn}\n${payload.token}`;
    try {
      const { client, sdk } = await this.sns.get();
      let endpointArn = this.endpoints.get(cacheKey);
      const cached = endpointArn !== undefined;
      if (!endpointArn) {
        endpointArn = await this.endpointFor(payload);
        this.endpoints.set(cacheKey, endpointArn);
      }
      try {
        await client.send(new sdk.PublishCommand({ TargetArn: endpointArn, MessageStructure: 'json', Message: pushMessageBody(payload.platform, payload.message) }), this.sns.callOptions());
      } catch (error) {
        // The endpoint may have been deleted or disabled since it was cached (and the token registered again): the
        // next attempt asks SNS afresh.
        this.endpoints.delete(cacheKey);
        const name = (error as { name?: string }).name ?? '';
        // Disabled although just enabled for this attempt: the platform refuses the token.
        if (!cached && (name === 'EndpointDisabledException' || name === 'EndpointDisabled')) return { outboxId: entry.outboxId, result: 'dead-token', payload };
        throw error;
      }
      return { outboxId: entry.outboxId, result: 'delivered' };
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      return { outboxId: entry.outboxId, result: 'failed', error: `${name}: ${(error as Error).message}` };
    }
  }

  /**
   * The platform endpoint of a device token, as SNS's token-management advice has it. CreatePlatformEndpoint is
   * idempotent only for the same token with the same attributes, so none are set (a CustomUserData naming the
   * device made every later registration of the token, by another identity or after a re-registration, fail with
   * "already exists with the same Token, but different attributes"); when SNS answers that anyway (an endpoint made
   * with attributes, by an older cognisync or another app), the endpoint it names is used. The device registered
   * this token, so an endpoint disabled since (a token the platform refused once) is enabled again; if the token is
   * still dead, the next Publish says so and the device is unregistered.
   */
  private async endpointFor(payload: PushPayload): Promise<string> {
    const { client, sdk } = await this.sns.get();
    let arn: string;
    try {
      arn = (await client.send(new sdk.CreatePlatformEndpointCommand({ PlatformApplicationArn: payload.applicationArn, Token: payload.token }), this.sns.callOptions())).EndpointArn!;
    } catch (error) {
      const existing = /Endpoint (arn:\S+) already exists with the same [Tt]oken/.exec((error as Error).message ?? '')?.[1];
      if (!existing) throw error;
      arn = existing;
    }
    await client.send(new sdk.SetEndpointAttributesCommand({ EndpointArn: arn, Attributes: { Enabled: 'true' } }), this.sns.callOptions());
    return arn;
  }

  /** Closes the client's sockets, if it was ever made. */
  async destroy(): Promise<void> {
    await this.sns.destroy();
  }
}
