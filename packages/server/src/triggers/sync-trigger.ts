// Invokes a pool's SyncTrigger function: through the AWS Lambda Invoke API (@aws-sdk/client-lambda; endpoint
// from COGNISYNC_LAMBDA_ENDPOINT, credentials from the standard AWS chain) for ARNs and names, or as an
// HMAC-signed webhook POST for http(s):// URLs. Errors come back as AWS's Lambda error names. The Lambda SDK
// is loaded on the first Lambda call, so pools without one (or with webhooks) never pay for it.
import { createHmac } from 'node:crypto';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { LazyAwsClient } from '../outbox/lazy-aws-client.js';
import { InvalidLambdaFunctionOutputException, LambdaThrottledException } from '../errors.js';
import type { SyncTriggerEvent } from '../core/sync-trigger.js';

const loadLambdaSdk = () => import('@aws-sdk/client-lambda');

/** The largest answer taken from a function: Lambda's own limit for a synchronous invocation's response (6 MB). */
export const MAX_FUNCTION_ANSWER_BYTES = 6 * 1024 * 1024;

const tooLarge = (what: string) => new InvalidLambdaFunctionOutputException(`The SyncTrigger ${what} returned more than ${MAX_FUNCTION_ANSWER_BYTES} bytes`);

/** A webhook answer's body, read up to MAX_FUNCTION_ANSWER_BYTES: a larger one is refused before it is all in memory. */
async function readCapped(response: Response): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_FUNCTION_ANSWER_BYTES) {
    await response.body?.cancel();
    throw tooLarge('webhook');
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    size += read.value.byteLength;
    if (size > MAX_FUNCTION_ANSWER_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge('webhook');
    }
    chunks.push(read.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface SyncTriggerOptions {
  region: string;
  lambdaEndpoint?: string;
  /** Key of the webhook signature header (`x-cognisync-signature: sha256=HMAC(key, "<timestamp>.<body>")`). */
  webhookSecret: string;
  timeoutMs: number;
}

export class SyncTriggerInvoker {
  private readonly lambda: LazyAwsClient<Awaited<ReturnType<typeof loadLambdaSdk>>, LambdaClient>;

  constructor(private readonly options: SyncTriggerOptions) {
    const { region, lambdaEndpoint, timeoutMs } = options;
    this.lambda = new LazyAwsClient(loadLambdaSdk, (sdk, config) => new sdk.LambdaClient(config), { region, timeoutMs, ...(lambdaEndpoint ? { endpoint: lambdaEndpoint } : {}) });
  }

  /** Calls the function with the event and returns its parsed answer. */
  async invoke(functionRef: string, event: SyncTriggerEvent): Promise<unknown> {
    const body = JSON.stringify(event);
    const text = /^https?:\/\//i.test(functionRef) ? await this.callWebhook(functionRef, body) : await this.callLambda(functionRef, body);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new InvalidLambdaFunctionOutputException('The SyncTrigger function returned an invalid result: not JSON');
    }
  }

  private async callLambda(functionName: string, body: string): Promise<string> {
    const { client, sdk } = await this.lambda.get();
    // A deadline for the whole call, the answer's body included: the HTTP handler's own timeouts only bound idle
    // sockets, so a function answering slowly (or stalling mid-answer) was waited for and its answer stored.
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    let response;
    try {
      response = await client.send(new sdk.InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: Buffer.from(body) }), { abortSignal: deadline });
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      // Throttling and timeouts are worth retrying (429); anything else is the function's fault.
      if (deadline.aborted || name === 'TooManyRequestsException' || name === 'TimeoutError' || /timeout/i.test((error as Error).message ?? '')) {
        throw new LambdaThrottledException(`The SyncTrigger function ${functionName} was throttled or timed out`);
      }
      // The error's name only: its message may carry the endpoint or other details meant for the developer, and this
      // one reaches the app user whose write it refused.
      throw new InvalidLambdaFunctionOutputException(`The SyncTrigger function ${functionName} could not be invoked: ${name || 'Error'}`);
    }
    if ((response.Payload?.byteLength ?? 0) > MAX_FUNCTION_ANSWER_BYTES) throw tooLarge(`function ${functionName}`);
    const text = Buffer.from(response.Payload ?? new Uint8Array()).toString('utf8');
    if (response.FunctionError) throw new InvalidLambdaFunctionOutputException(`The SyncTrigger function ${functionName} failed (${response.FunctionError})`);
    return text;
  }

  /** Closes the Lambda client's sockets, if it was ever made. */
  async destroy(): Promise<void> {
    await this.lambda.destroy();
  }

  private async callWebhook(url: string, body: string): Promise<string> {
    const timestamp = Math.floor(Date.now() / 1000).toString();
    const signature = createHmac('sha256', this.options.webhookSecret).update(`${timestamp}.${body}`).digest('hex');
    let response: Response;
    let text: string;
    // One deadline for the answer and its body: a webhook stalling mid-body is a timeout too (it was a 500).
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cognisync-timestamp': timestamp, 'x-cognisync-signature': `sha256=${signature}` },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        // A redirect is an answer like any other (a failed one): followed, it became a GET to wherever it pointed.
        redirect: 'manual',
      });
      text = await readCapped(response);
    } catch (error) {
      if (error instanceof InvalidLambdaFunctionOutputException) throw error;
      if ((error as Error).name === 'TimeoutError') throw new LambdaThrottledException('The SyncTrigger webhook timed out');
      // Neither the URL nor fetch's message, which may name it (with a password in it, QA): the app user reads this.
      const code = (error as { cause?: { code?: unknown } }).cause?.code;
      throw new InvalidLambdaFunctionOutputException(`The SyncTrigger webhook could not be reached${typeof code === 'string' ? ` (${code})` : ''}`);
    }
    if (response.status === 429 || response.status === 503) throw new LambdaThrottledException(`The SyncTrigger webhook answered ${response.status}`);
    if (!response.ok) throw new InvalidLambdaFunctionOutputException(`The SyncTrigger webhook answered ${response.status}`);
    return text;
  }
}
