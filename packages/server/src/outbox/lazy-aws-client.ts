// An outbound AWS SDK v3 client (Kinesis, SNS, Lambda) built on first use: most deployments never enable the
// integration, and each SDK costs the process several MB. HTTP/1.1 handler (Kinesis-compatible servers such as
// kinesalite do not speak HTTP/2), one attempt (the outbox retries), the endpoint override when one is set.
import type { NodeHttpHandler } from '@smithy/node-http-handler';

export interface AwsClientOptions {
  region: string;
  endpoint?: string;
  timeoutMs: number;
}

interface ClientConfig {
  region: string;
  endpoint?: string;
  requestHandler: NodeHttpHandler;
  maxAttempts: number;
}

export class LazyAwsClient<Sdk, Client extends { destroy(): void }> {
  private loaded: Promise<{ client: Client; sdk: Sdk }> | undefined;

  constructor(
    private readonly load: () => Promise<Sdk>,
    private readonly build: (sdk: Sdk, config: ClientConfig) => Client,
    private readonly options: AwsClientOptions,
  ) {}

  get(): Promise<{ client: Client; sdk: Sdk }> {
    this.loaded ??= (async () => {
      const [sdk, { NodeHttpHandler }] = await Promise.all([this.load(), import('@smithy/node-http-handler')]);
      const { region, endpoint, timeoutMs } = this.options;
      // throwOnRequestTimeout: without it, smithy only logs a warning when requestTimeout passes and the call waits on
      // for as long as the other side keeps the socket open; a Kinesis or SNS endpoint that accepted and never
      // answered held up the whole outbox, every pool's deliveries with it.
      const requestHandler = new NodeHttpHandler({ requestTimeout: timeoutMs, connectionTimeout: timeoutMs, throwOnRequestTimeout: true });
      return { client: this.build(sdk, { region, ...(endpoint ? { endpoint } : {}), requestHandler, maxAttempts: 1 }), sdk };
    })();
    return this.loaded;
  }

  /**
   * Options for one `client.send`: a deadline for the whole call. The handler's requestTimeout ends once the
   * answer's head has arrived, so a body that stalls would otherwise hold the call (and the outbox) for ever.
   */
  callOptions(): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(this.options.timeoutMs) };
  }

  /** Closes the client's sockets, if it was ever built. */
  async destroy(): Promise<void> {
    (await this.loaded?.catch(() => undefined))?.client.destroy();
  }
}
