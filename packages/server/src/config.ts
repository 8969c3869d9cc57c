// Server configuration from command-line flags and environment variables (flags win).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { isWholeNumberIn, limitsFromEnv, type Limits } from './limits.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl?: string;
  /** Connections each process may open to PostgreSQL (COGNISYNC_DATABASE_MAX_CONNECTIONS, default 10). */
  databaseMaxConnections: number;
  /** How long a PostgreSQL statement may go unanswered (COGNISYNC_DATABASE_QUERY_TIMEOUT_MS, default 60 s; 0: no limit). */
  databaseQueryTimeoutMs: number;
  region: string;
  developerAccessKeyId?: string;
  developerSecretAccessKey?: string;
  /** Root secret for issued credentials and the OpenID signing key (else `<dataDir>/master.key`). */
  masterKey?: string;
  /** The URL clients reach this server at: the OpenID token issuer (default: the listening URL). */
  publicUrl?: string;
  /** SQLite `synchronous` pragma; NORMAL in WAL mode survives a process crash (kill -9), FULL also a power loss. */
  sqliteSynchronous: 'FULL' | 'NORMAL';
  logLevel: string;
  /** AWS-protocol endpoints of the integrations (standard AWS credential chain for their credentials). */
  lambdaEndpoint?: string;
  kinesisEndpoint?: string;
  snsEndpoint?: string;
  /** HMAC key for SyncTrigger webhooks (default: the developer secret access key). */
  webhookSecret?: string;
  /** Longest a SyncTrigger function may take (COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS, default 5000). */
  syncTriggerTimeoutMs: number;
  /** Push services WEB_PUSH devices may name, by host and its subdomains (COGNISYNC_WEB_PUSH_HOSTS, comma-separated; `*`: any). */
  webPushHosts: string[];
  /** Longest one Kinesis, SNS or Web Push call may take before the outbox retries it (COGNISYNC_DELIVERY_TIMEOUT_MS, default 10000). */
  deliveryTimeoutMs: number;
  /** Interval of the comment lines that keep idle live streams open through proxies (default 15 s). */
  liveHeartbeatMs: number;
  /** Slow clients: all headers within this long (COGNISYNC_HEADERS_TIMEOUT_MS, default 20 s)… */
  headersTimeoutMs: number;
  /** …and the whole request within this long (COGNISYNC_REQUEST_TIMEOUT_MS, default 60 s). */
  requestTimeoutMs: number;
  /**
   * How long a stop (SIGTERM/SIGINT) waits for requests in flight before it cuts their connections
   * (COGNISYNC_SHUTDOWN_GRACE_MS, default 10 s): a client that stopped sending its body must not hold the stop.
   */
  shutdownGraceMs: number;
  /** Origins allowed by CORS (COGNISYNC_CORS_ORIGINS, comma-separated, `*` for any); empty = off. */
  corsOrigins: string[];
  /** Whether GET /metrics answers (COGNISYNC_METRICS=off, false, no or 0 turns it off). */
  metricsEnabled: boolean;
  /**
   * The client ids (audiences) each OpenID Connect provider's tokens must be issued to, as IAM's OIDC provider's
   * ClientIDList (COGNISYNC_OIDC_CLIENT_IDS: comma-separated `provider=client-id` entries, a provider once per client
   * id). A provider without an entry has its tokens' audience unchecked.
   */
  oidcClientIds: Record<string, string[]>;
  /** Contact in Web Push VAPID tokens (COGNISYNC_VAPID_SUBJECT, a mailto: or https: URL). */
  vapidSubject: string;
  limits: Limits;
}

// The longest delay node's timers honour (setTimeout, setInterval, AbortSignal.timeout): a longer one fires after 1 ms.
const maxTimerMs = 2_147_483_647;

// pino's own levels, so a typo fails here with the list rather than inside pino with a message naming no variable.
const logLevels = [...Object.keys(pino.levels.values), 'silent'];

// The usual spellings of a switch, so `COGNISYNC_METRICS=false` does not leave metrics on.
const switchValues = new Map(Object.entries({ on: true, true: true, yes: true, 1: true, off: false, false: false, no: false, 0: false }));

// A region is the prefix of every pool and identity id, which the model requires to match `[\w-]+:[0-9a-f-]+` in at
// most 55 characters: with a 36-character UUID and the colon, a region of more than 18 characters makes unusable ids.
const regionPattern = /^[a-z0-9-]{1,18}$/;

/** A flag or variable as given, with the name to blame when it is wrong; an empty value counts as unset. */
interface Setting {
  name: string;
  text: string;
}

function setting(name: string, text: string | undefined): Setting | undefined {
  return text === undefined || text === '' ? undefined : { name, text };
}

function wholeNumber(given: Setting | undefined, fallback: number, minimum: number, maximum: number, unit = ''): number {
  if (!given) return fallback;
  if (!isWholeNumberIn(given.text, minimum, maximum)) throw new Error(`${given.name} must be a whole number${unit} from ${minimum} to ${maximum}, got '${given.text}'`);
  return Number(given.text);
}

/**
 * The push services browsers subscribe with (Chrome and Edge's FCM, legacy GCM, Firefox's autopush, Safari's, and
 * Windows' WNS), by host name and its subdomains: COGNISYNC_WEB_PUSH_HOSTS when the operator runs another one.
 */
export const DEFAULT_WEB_PUSH_HOSTS = ['fcm.googleapis.com', 'android.googleapis.com', 'push.services.mozilla.com', 'push.apple.com', 'notify.windows.com'];

/** COGNISYNC_WEB_PUSH_HOSTS: host names (lowercase letters, digits, dots, hyphens, or an IP address) or `*`. */
function webPushHosts(given: Setting | undefined): string[] {
  if (!given) return DEFAULT_WEB_PUSH_HOSTS;
  const hosts = given.text.split(',').map((host) => host.trim().toLowerCase()).filter(Boolean);
  if (hosts.length === 0 || hosts.some((host) => host !== '*' && !/^[a-z0-9.-]+$|^\[?[0-9a-f:.]+\]?$/.test(host))) {
    throw new Error(`${given.name} must be a comma-separated list of host names (or *), got '${given.text}'`);
  }
  // As an endpoint URL's hostname reads, which the check compares with: an IPv6 address in brackets and in its
  // shortest form (`::1` and `[0:0::1]` are `[::1]`), an IPv4 address in dotted decimal.
  return hosts.map((host) => (host === '*' ? host : urlHostname(/^[0-9a-f]*:[0-9a-f:.]*$/.test(host) ? `[${host}]` : host, given)));
}

function urlHostname(host: string, given: Setting): string {
  try {
    return new URL(`https://${host}/`).hostname;
  } catch {
    throw new Error(`${given.name} must be a comma-separated list of host names (or *), got '${given.text}'`);
  }
}

/** An http(s) URL (an endpoint, the public URL): refused at startup rather than on first use. */
function httpUrl(given: Setting): string {
  let url: URL | undefined;
  try {
    url = new URL(given.text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new Error(`${given.name} must be an http:// or https:// URL, got '${given.text}'`);
  return given.text;
}

/** COGNISYNC_CORS_ORIGINS: `*`, or origins as browsers send them (scheme://host[:port], no path). */
function corsOrigins(given: Setting | undefined): string[] {
  const origins = (given?.text ?? '').split(',').map((origin) => origin.trim()).filter(Boolean);
  for (const origin of origins) {
    if (origin === '*') continue;
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.origin !== origin) throw new Error(`${given!.name} must be * or comma-separated origins such as https://app.example.com, got '${origin}'`);
  }
  return origins;
}

/** COGNISYNC_VAPID_SUBJECT: a mailto: or https: URL, as the Web Push services require. */
function vapidSubject(given: Setting | undefined): string {
  if (!given) return 'mailto:cognisync@localhost';
  if (!/^(mailto:[^\s@]+@[^\s@]+|https:\/\/\S+)$/.test(given.text)) throw new Error(`${given.name} must be a mailto: or https: URL, got '${given.text}'`);
  return given.text;
}

/** COGNISYNC_OIDC_CLIENT_IDS: `provider=client-id` entries, comma-separated (see Config.oidcClientIds). */
function oidcClientIds(given: Setting | undefined): Record<string, string[]> {
  const byProvider: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  if (!given) return byProvider;
  for (const entry of given.text.split(',').map((part) => part.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const provider = entry.slice(0, eq).trim();
    const clientId = entry.slice(eq + 1).trim();
    if (eq <= 0 || !provider || !clientId) {
      throw new Error(`${given.name} must be comma-separated provider=client-id entries (e.g. login.example.com=my-app), got '${entry}'`);
    }
    (byProvider[provider] ??= []).push(clientId);
  }
  return byProvider;
}

function milliseconds(given: Setting | undefined, fallback: number, minimum = 1): number {
  return wholeNumber(given, fallback, minimum, maxTimerMs, ' of milliseconds');
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      'database-url': { type: 'string' },
      region: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  // An empty variable (`PORT=` in an env file) counts as unset, not as "any port", "every interface" or "the current
  // directory"; so does an empty flag. A flag wins over its variable.
  const variable = (name: string) => setting(name, env[name]);
  const flagOr = (flag: keyof typeof values, name: string) => setting(`--${flag}`, values[flag]) ?? variable(name);

  const port = flagOr('port', 'PORT') ?? { name: 'PORT', text: '8080' };
  if (!isWholeNumberIn(port.text, 0, 65535)) throw new Error(`invalid port '${port.text}': ${port.name} must be a whole number from 0 to 65535`);
  const synchronous = (variable('COGNISYNC_SQLITE_SYNCHRONOUS')?.text ?? 'NORMAL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error(`COGNISYNC_SQLITE_SYNCHRONOUS must be FULL or NORMAL, got '${env.COGNISYNC_SQLITE_SYNCHRONOUS}'`);
  const region = flagOr('region', 'COGNISYNC_REGION') ?? { name: 'COGNISYNC_REGION', text: 'us-east-1' };
  if (!regionPattern.test(region.text)) {
    throw new Error(`${region.name} must be a region name of up to 18 lowercase letters, digits and hyphens (such as us-east-1), got '${region.text}'`);
  }
  const logLevel = variable('COGNISYNC_LOG_LEVEL')?.text.toLowerCase() ?? 'info';
  if (!logLevels.includes(logLevel)) throw new Error(`COGNISYNC_LOG_LEVEL must be one of ${logLevels.join(', ')}, got '${env.COGNISYNC_LOG_LEVEL}'`);
  const metricsEnabled = switchValues.get((variable('COGNISYNC_METRICS')?.text ?? 'on').toLowerCase());
  if (metricsEnabled === undefined) throw new Error(`COGNISYNC_METRICS must be on or off (or true/false, yes/no, 1/0), got '${env.COGNISYNC_METRICS}'`);
  const databaseUrl = flagOr('database-url', 'DATABASE_URL')?.text;
  return {
    host: flagOr('host', 'HOST')?.text ?? '127.0.0.1',
    port: Number(port.text),
    dataDir: resolve(flagOr('data-dir', 'COGNISYNC_DATA_DIR')?.text ?? './data'),
    ...(databaseUrl ? { databaseUrl } : {}),
    // pg's pool takes any number here, and a negative one makes every query wait forever (`migrate` then exits 0
    // having done nothing); PostgreSQL itself allows at most 262,143 connections.
    databaseMaxConnections: wholeNumber(variable('COGNISYNC_DATABASE_MAX_CONNECTIONS'), 10, 1, 262_143),
    databaseQueryTimeoutMs: milliseconds(variable('COGNISYNC_DATABASE_QUERY_TIMEOUT_MS'), 60_000, 0),
    region: region.text,
    ...(env.COGNISYNC_ACCESS_KEY_ID ? { developerAccessKeyId: env.COGNISYNC_ACCESS_KEY_ID } : {}),
    ...(env.COGNISYNC_SECRET_ACCESS_KEY ? { developerSecretAccessKey: env.COGNISYNC_SECRET_ACCESS_KEY } : {}),
    ...(env.COGNISYNC_MASTER_KEY ? { masterKey: env.COGNISYNC_MASTER_KEY } : {}),
    ...(env.COGNISYNC_PUBLIC_URL ? { publicUrl: httpUrl(variable('COGNISYNC_PUBLIC_URL')!).replace(/\/+$/, '') } : {}),
    sqliteSynchronous: synchronous,
    logLevel,
    ...(env.COGNISYNC_LAMBDA_ENDPOINT ? { lambdaEndpoint: httpUrl(variable('COGNISYNC_LAMBDA_ENDPOINT')!) } : {}),
    ...(env.COGNISYNC_KINESIS_ENDPOINT ? { kinesisEndpoint: httpUrl(variable('COGNISYNC_KINESIS_ENDPOINT')!) } : {}),
    ...(env.COGNISYNC_SNS_ENDPOINT ? { snsEndpoint: httpUrl(variable('COGNISYNC_SNS_ENDPOINT')!) } : {}),
    ...(env.COGNISYNC_WEBHOOK_SECRET ? { webhookSecret: env.COGNISYNC_WEBHOOK_SECRET } : {}),
    syncTriggerTimeoutMs: milliseconds(variable('COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS'), 5000),
    deliveryTimeoutMs: milliseconds(variable('COGNISYNC_DELIVERY_TIMEOUT_MS'), 10_000),
    webPushHosts: webPushHosts(variable('COGNISYNC_WEB_PUSH_HOSTS')),
    liveHeartbeatMs: milliseconds(variable('COGNISYNC_LIVE_HEARTBEAT_MS'), 15_000),
    headersTimeoutMs: milliseconds(variable('COGNISYNC_HEADERS_TIMEOUT_MS'), 20_000),
    requestTimeoutMs: milliseconds(variable('COGNISYNC_REQUEST_TIMEOUT_MS'), 60_000),
    // 0 is a choice here (cut the connections at once), not a mistake.
    shutdownGraceMs: milliseconds(variable('COGNISYNC_SHUTDOWN_GRACE_MS'), 10_000, 0),
    corsOrigins: corsOrigins(variable('COGNISYNC_CORS_ORIGINS')),
    metricsEnabled,
    oidcClientIds: oidcClientIds(variable('COGNISYNC_OIDC_CLIENT_IDS')),
    vapidSubject: vapidSubject(variable('COGNISYNC_VAPID_SUBJECT')),
    limits: limitsFromEnv(env),
  };
}
