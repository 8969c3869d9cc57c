// Server configuration from command-line flags and environment variables (flags win).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { limitsFromEnv, type Limits } from './limits.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl?: string;
  /** Connections each process may open to PostgreSQL (COGNISYNC_DATABASE_MAX_CONNECTIONS, default 10). */
  databaseMaxConnections: number;
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
  /** Whether GET /metrics answers (COGNISYNC_METRICS=off turns it off). */
  metricsEnabled: boolean;
  /** Contact in Web Push VAPID tokens (COGNISYNC_VAPID_SUBJECT, a mailto: or https: URL). */
  vapidSubject: string;
  limits: Limits;
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
  // An empty variable (`PORT=` in an env file) counts as unset, not as "any port" or "every interface".
  const portText = values.port ?? (env.PORT || '8080');
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port '${portText}'`);
  const synchronous = (env.COGNISYNC_SQLITE_SYNCHRONOUS ?? 'NORMAL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error('COGNISYNC_SQLITE_SYNCHRONOUS must be FULL or NORMAL');
  const databaseUrl = values['database-url'] ?? env.DATABASE_URL;
  return {
    host: values.host ?? (env.HOST || '127.0.0.1'),
    port,
    dataDir: resolve(values['data-dir'] ?? env.COGNISYNC_DATA_DIR ?? './data'),
    ...(databaseUrl ? { databaseUrl } : {}),
    databaseMaxConnections: Number(env.COGNISYNC_DATABASE_MAX_CONNECTIONS ?? 10) || 10,
    region: values.region ?? env.COGNISYNC_REGION ?? 'us-east-1',
    ...(env.COGNISYNC_ACCESS_KEY_ID ? { developerAccessKeyId: env.COGNISYNC_ACCESS_KEY_ID } : {}),
    ...(env.COGNISYNC_SECRET_ACCESS_KEY ? { developerSecretAccessKey: env.COGNISYNC_SECRET_ACCESS_KEY } : {}),
    ...(env.COGNISYNC_MASTER_KEY ? { masterKey: env.COGNISYNC_MASTER_KEY } : {}),
    ...(env.COGNISYNC_PUBLIC_URL ? { publicUrl: env.COGNISYNC_PUBLIC_URL.replace(/\/+$/, '') } : {}),
    sqliteSynchronous: synchronous,
    logLevel: env.COGNISYNC_LOG_LEVEL ?? 'info',
    ...(env.COGNISYNC_LAMBDA_ENDPOINT ? { lambdaEndpoint: env.COGNISYNC_LAMBDA_ENDPOINT } : {}),
    ...(env.COGNISYNC_KINESIS_ENDPOINT ? { kinesisEndpoint: env.COGNISYNC_KINESIS_ENDPOINT } : {}),
    ...(env.COGNISYNC_SNS_ENDPOINT ? { snsEndpoint: env.COGNISYNC_SNS_ENDPOINT } : {}),
    ...(env.COGNISYNC_WEBHOOK_SECRET ? { webhookSecret: env.COGNISYNC_WEBHOOK_SECRET } : {}),
    syncTriggerTimeoutMs: Number(env.COGNISYNC_SYNC_TRIGGER_TIMEOUT_MS ?? 5000) || 5000,
    liveHeartbeatMs: Number(env.COGNISYNC_LIVE_HEARTBEAT_MS ?? 15_000) || 15_000,
    headersTimeoutMs: Number(env.COGNISYNC_HEADERS_TIMEOUT_MS ?? 20_000) || 20_000,
    requestTimeoutMs: Number(env.COGNISYNC_REQUEST_TIMEOUT_MS ?? 60_000) || 60_000,
    shutdownGraceMs: Number(env.COGNISYNC_SHUTDOWN_GRACE_MS ?? 10_000) || 10_000,
    corsOrigins: (env.COGNISYNC_CORS_ORIGINS ?? '').split(',').map((origin) => origin.trim()).filter(Boolean),
    metricsEnabled: (env.COGNISYNC_METRICS ?? 'on').toLowerCase() !== 'off',
    vapidSubject: env.COGNISYNC_VAPID_SUBJECT ?? 'mailto:cognisync@localhost',
    limits: limitsFromEnv(env),
  };
}
