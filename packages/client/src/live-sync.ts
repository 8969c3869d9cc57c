// Live sync: follows cognisync's live stream of the identity's changes and synchronizes the watched datasets.
//
//                  startLiveSync()
//                        │
//                        ▼
//   ┌──────────────► CONNECTING   fresh credentials (refreshed before expiry), SigV4 header or pre-signed URL
//   │                    │  ╲
//   │                    │   ╲── network error / 4xx / 5xx / not open within heartbeatTimeoutMs ──┐
//   │                    ▼ 200                                                                    │
//   │                  OPEN ── catch-up: one sync per watched dataset (changes during a gap are     │
//   │                    │     not replayed); another device's change to a watched dataset, not     │
//   │                    │     yet local → debounced sync, one at a time per dataset (store lock)   │
//   │                    │                                                                        │
//   │                    ▼ stream ended / failed / silent for heartbeatTimeoutMs                  │
//   └──────────────── BACKOFF ◄───────────────────────────────────────────────────────────────────┘
//                     baseDelayMs·2^(n−1)·[½, 1], capped at maxDelayMs; n resets once a stream opened
//
//   identity changed (setLogins / changeIdentity) ─► CONNECTING at once, without backoff or onError.
//   stop(), from any state ─► STOPPED: the stream is aborted, timers cleared, running syncs aborted and awaited.
import { NetworkError, ServiceError } from './errors.ts';
import type { DatasetMetadata } from './records.ts';
import type { SynchronizeOptions, SyncSummary } from './sync-loop.ts';
import { validateDatasetName } from './limits.ts';
import type { CognitoSyncApi, LiveChange } from './transport/cognito-sync-api.ts';
import { ServerSentEventParser } from './transport/server-sent-events.ts';

export interface ReconnectPolicy {
  /** First delay after the stream dropped or could not open; doubles per failed attempt, jitter in [½, 1] of it (default 1 s). */
  baseDelayMs: number;
  /** Largest delay between attempts (default 30 s). */
  maxDelayMs: number;
}

export const defaultReconnectPolicy: Readonly<ReconnectPolicy> = Object.freeze({ baseDelayMs: 1000, maxDelayMs: 30_000 });

/** A sync that live sync ran and that changed local data. */
export interface LiveSyncChange {
  datasetName: string;
  summary: SyncSummary;
  /** `change`: another device's change was announced; `catch-up`: the stream (re)connected. */
  cause: 'change' | 'catch-up';
}

export interface LiveSyncOptions extends Pick<SynchronizeOptions, 'onConflict' | 'onDatasetDeleted' | 'onDatasetsMerged'> {
  /**
   * Which datasets to keep synchronized: `'opened'` (default): every dataset opened with `openOrCreateDataset()` on
   * this manager, including ones opened later; or a list of dataset names.
   */
  datasets?: 'opened' | string[];
  /** Waits this long after an announced change before synchronizing, so that a burst costs one sync (default 100 ms). */
  debounceMs?: number;
  /** After each sync run by live sync that changed local data (`summary.changedKeys`, or the dataset was deleted). */
  onChange?: (change: LiveSyncChange) => void | Promise<void>;
  /**
   * A connection attempt failed or the stream dropped (live sync reconnects by itself), or a sync it ran failed
   * (`datasetName` set; it is retried at the next announced change or reconnection). Default: ignored.
   */
  onError?: (error: Error, context: { datasetName?: string }) => void;
  /** The stream opened (`true`) or was lost (`false`). */
  onConnectionChange?: (connected: boolean) => void;
  /**
   * `'header'` (default): SigV4 Authorization header. `'presigned-url'`: the signature travels in the URL (valid for
   * `presignExpiresInSeconds` to open the stream), so a cross-origin browser request needs no CORS preflight; but URLs
   * with credentials may end up in proxy logs.
   */
  signing?: 'header' | 'presigned-url';
  reconnect?: Partial<ReconnectPolicy>;
  /**
   * Reconnects when nothing, not even a keep-alive comment, arrived for this long (a half-open connection after sleep
   * or a network change). Default 45 s: three of the server's 15-s heartbeats.
   */
  heartbeatTimeoutMs?: number;
}

/** The handle startLiveSync() returns. */
export interface LiveSync {
  /** Whether the stream is open right now. */
  readonly connected: boolean;
  /** Closes the stream, cancels scheduled syncs, aborts running ones (safely: see synchronize()) and waits for them. */
  stop(): Promise<void>;
}

/** @internal What live sync needs from its SyncManager. */
export interface LiveSyncHost {
  api: CognitoSyncApi;
  identityPoolId: string;
  identityId(): Promise<string>;
  deviceId(): Promise<string>;
  openedDatasets(): string[];
  localDataset(name: string): Promise<DatasetMetadata | undefined>;
  synchronize(name: string, options: SynchronizeOptions): Promise<SyncSummary>;
  expireCredentials(): void;
  random: () => number;
  onStopped(): void;
}

/** Per watched dataset: what is waiting to be synchronized, the debounce timer, the sync running now. */
interface DatasetSchedule {
  timer?: ReturnType<typeof setTimeout>;
  running?: Promise<void>;
  catchUp: boolean;
  /** The most telling announced change not yet handled. */
  change?: LiveChange;
}

const presignExpiresInSeconds = 300;

/**
 * Whether an announced change may be missing locally. Deletions carry no DeviceId and the dataset's count at
 * deletion, so an event without one at exactly the local count may be a deletion after our last sync.
 */
const mayBeNews = (change: LiveChange, lastSyncCount: number) =>
  change.syncCount > lastSyncCount || (change.syncCount === lastSyncCount && change.deviceId === null);

/** Settles with `promise`, or rejects when `signal` aborts first (the work itself goes on; e.g. a shared credentials refresh). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** @internal Use `manager.startLiveSync()`. */
export class LiveSyncConnection implements LiveSync {
  private readonly reconnect: ReconnectPolicy;
  private readonly debounceMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly listed: Set<string> | undefined;
  private readonly schedules = new Map<string, DatasetSchedule>();
  /** Aborts the current connection attempt or stream. */
  private attempt = new AbortController();
  /** Aborts running syncs on stop(). */
  private readonly syncs = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private streamIdentityId: string | undefined;
  private ownDeviceId: string | undefined;
  private isConnected = false;
  /** The current stream belongs to an identity the manager left: reconnect at once, it is no failure. */
  private identitySwitched = false;

  constructor(
    private readonly host: LiveSyncHost,
    private readonly options: LiveSyncOptions,
  ) {
    this.reconnect = { ...defaultReconnectPolicy, ...options.reconnect };
    this.debounceMs = options.debounceMs ?? 100;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 45_000;
    if (Array.isArray(options.datasets)) {
      for (const name of options.datasets) validateDatasetName(name);
      this.listed = new Set(options.datasets);
    }
  }

  get connected(): boolean {
    return this.isConnected;
  }

  start(): void {
    this.loop = this.run();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.attempt.abort();
      this.syncs.abort();
      this.wake?.();
      for (const schedule of this.schedules.values()) clearTimeout(schedule.timer);
      await this.loop;
      await Promise.allSettled([...this.schedules.values()].map((s) => s.running));
      this.host.onStopped();
    })();
    return this.stopping;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /** @internal The manager moved to another identity: reopen the stream for it. */
  identityChanged(): void {
    // After the switch has completed (the manager reports it before recording the new id).
    setTimeout(() => {
      void this.host.identityId().then((id) => {
        if (id === this.streamIdentityId || this.stopped) return;
        this.identitySwitched = true;
        this.attempt.abort(new NetworkError('The identity changed'));
        this.wake?.();
      }, () => undefined);
    }, 0);
  }

  private watched(name: string): boolean {
    return this.listed ? this.listed.has(name) : this.host.openedDatasets().includes(name);
  }

  private report(error: unknown, datasetName?: string): void {
    if (this.stopped) return;
    try {
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)), datasetName === undefined ? {} : { datasetName });
    } catch {
      // An app's error hook must not stop live sync.
    }
  }

  private setConnected(connected: boolean): void {
    if (this.isConnected === connected) return;
    this.isConnected = connected;
    try {
      this.options.onConnectionChange?.(connected);
    } catch {
      // As above.
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const attempt = (this.attempt = new AbortController());
      this.identitySwitched = false;
      // Credentials, identity and the answer's headers must all come within the heartbeat timeout too: a server that
      // accepts the connection and never answers must not stall live sync.
      const connectTimer = setTimeout(() => attempt.abort(new NetworkError(`The live stream did not open within ${this.heartbeatTimeoutMs} ms`)), this.heartbeatTimeoutMs);
      try {
        let response: Response;
        try {
          this.ownDeviceId ??= await untilAborted(this.host.deviceId(), attempt.signal);
          const identityId = (this.streamIdentityId = await untilAborted(this.host.identityId(), attempt.signal));
          response = await untilAborted(
            this.host.api.openLiveStream(this.host.identityPoolId, identityId, {
              signal: attempt.signal,
              ...(this.options.signing === 'presigned-url' ? { presignExpiresInSeconds } : {}),
            }),
            attempt.signal,
          );
        } finally {
          clearTimeout(connectTimer);
        }
        failures = 0;
        this.setConnected(true);
        for (const name of this.listed ?? this.host.openedDatasets()) this.schedule(name, 'catch-up');
        await this.read(response.body!, attempt);
        throw new NetworkError('The live stream ended');
      } catch (error) {
        if (this.stopped) break;
        if (this.identitySwitched) {
          this.identitySwitched = false;
          continue;
        }
        // The server thinks the credentials expired (clock skew): fetch new ones for the next attempt.
        if (error instanceof ServiceError && error.name === 'ExpiredTokenException') this.host.expireCredentials();
        this.report(error);
      } finally {
        this.setConnected(false);
      }
      const delay = Math.min(this.reconnect.maxDelayMs, this.reconnect.baseDelayMs * 2 ** failures++) * (0.5 + this.host.random() / 2);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Reads the stream until it ends; rejects when it fails, is aborted, or stays silent too long. */
  private async read(body: ReadableStream<Uint8Array>, attempt: AbortController): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new ServerSentEventParser();
    let idle: ReturnType<typeof setTimeout> | undefined;
    const resetIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => attempt.abort(new NetworkError(`The live stream was silent for ${this.heartbeatTimeoutMs} ms`)), this.heartbeatTimeoutMs);
    };
    // fetch aborts the body with the signal; cancelling the reader covers streams that ignore it.
    const cancel = () => void reader.cancel(attempt.signal.reason).catch(() => undefined);
    attempt.signal.addEventListener('abort', cancel, { once: true });
    try {
      resetIdle();
      for (;;) {
        const { done, value } = await reader.read();
        attempt.signal.throwIfAborted();
        if (done) return;
        resetIdle();
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          let change: LiveChange;
          try {
            change = JSON.parse(event.data) as LiveChange;
          } catch {
            continue; // Not one of ours: SSE allows other events, and they change nothing here.
          }
          this.announce(change);
        }
      }
    } finally {
      clearTimeout(idle);
      attempt.signal.removeEventListener('abort', cancel);
    }
  }

  private announce(change: LiveChange): void {
    if (typeof change?.datasetName !== 'string' || typeof change.syncCount !== 'number') return;
    if (change.identityId !== this.streamIdentityId) return;
    if (change.deviceId && change.deviceId === this.ownDeviceId) return;
    if (!this.watched(change.datasetName)) return;
    this.schedule(change.datasetName, change);
  }

  /** Queues a sync of the dataset: after the debounce delay, or after the one running now. */
  private schedule(name: string, cause: 'catch-up' | LiveChange): void {
    if (this.stopped) return;
    let schedule = this.schedules.get(name);
    if (!schedule) this.schedules.set(name, (schedule = { catchUp: false }));
    if (cause === 'catch-up') schedule.catchUp = true;
    else if (!schedule.change || cause.syncCount > schedule.change.syncCount || (cause.syncCount === schedule.change.syncCount && cause.deviceId === null)) {
      schedule.change = cause;
    }
    if (schedule.running || schedule.timer) return;
    const s = schedule;
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.running = this.drain(name, s).finally(() => (s.running = undefined));
    }, this.debounceMs);
  }

  /** Runs syncs of one dataset, one after another, until nothing is waiting. */
  private async drain(name: string, schedule: DatasetSchedule): Promise<void> {
    while (!this.stopped && (schedule.catchUp || schedule.change)) {
      const cause = schedule.catchUp ? 'catch-up' : 'change';
      const change = schedule.change;
      schedule.catchUp = false;
      schedule.change = undefined;
      try {
        const local = await this.host.localDataset(name);
        // An opened dataset this device has since deleted (and synchronized) is gone: a sync would bring it back, empty.
        if (!local && !this.listed) continue;
        if (cause === 'change' && !mayBeNews(change!, local?.lastSyncCount ?? 0)) continue;
        const { onConflict, onDatasetDeleted, onDatasetsMerged } = this.options;
        const summary = await this.host.synchronize(name, { onConflict, onDatasetDeleted, onDatasetsMerged, signal: this.syncs.signal });
        if (summary.changedKeys.length || summary.datasetDeleted) await this.options.onChange?.({ datasetName: name, summary, cause });
      } catch (error) {
        this.report(error, name);
      }
    }
  }
}
