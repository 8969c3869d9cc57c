// What an operation is: its AWS model entry (binding + input constraints), who may call it, and a handler
// that takes (context, input, store) and returns a plain object. Operations never see HTTP.
import type { ServiceName } from '../errors.js';
import { ResourceNotFoundException } from '../errors.js';
import type { Limits } from '../limits.js';
import type { OperationModel } from '../model/shapes.js';
import type { Principal, PrincipalKind } from '../auth/principal.js';
import type { SyncSessionTokens } from '../core/sync-session-token.js';
import type { LoginVerifier } from '../auth/login-verifier.js';
import type { OpenIdTokens } from '../auth/openid-tokens.js';
import type { CredentialDeriver } from '../auth/temporary-credentials.js';
import type { SyncTriggerInvoker } from '../triggers/sync-trigger.js';
import type { PoolSyncSettings, Store } from '../store/store.js';

export interface OperationContext {
  requestId: string;
  /** Undefined only for operations the model marks unsigned. */
  principal: Principal | undefined;
  region: string;
  now: Date;
  limits: Limits;
  syncSessionTokens: SyncSessionTokens;
  /** What the Cognito Identity operations need to verify logins and issue tokens and credentials. */
  identity: IdentityServices;
  integrations: Integrations;
  /**
   * Counts an unsigned call against the identity it has just proved it may act for, and that identity's pool;
   * throws TooManyRequestsException over either rate (see identity-access.ts, authenticateIdentity).
   */
  rateLimit(identityPoolId: string, identityId: string): void;
}

export interface Integrations {
  syncTrigger: SyncTriggerInvoker;
  /** Wakes this process's outbox worker after a commit that wrote outbox entries. */
  outbox: { notify(): void };
  /** Asks Kinesis whether a stream exists (undefined: Kinesis could not be asked). */
  streams: { streamExists(streamName: string): Promise<boolean | undefined> };
  /** Checks a WEB_PUSH device token: the subscription, or why it is refused. */
  webPush: { check(token: string): object | string };
}

export interface IdentityServices {
  openIdTokens: OpenIdTokens;
  logins: LoginVerifier;
  credentials: CredentialDeriver;
}

/**
 * AWS's JSON protocols write a timestamp as epoch seconds, a number with millisecond precision. Answers carry them
 * in that form already, so writing one is a single JSON.stringify; `NoDates` makes a Date in an answer a type error.
 */
export function epochSeconds(ms: number): number;
export function epochSeconds(ms: number | undefined): number | undefined;
export function epochSeconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms / 1000;
}

type HasDate<T> = T extends Date ? true : T extends object ? (true extends { [K in keyof T]-?: HasDate<T[K]> }[keyof T] ? true : false) : false;
/** Fails to type-check when an operation's answer holds a Date anywhere (JSON.stringify would write an ISO string). */
type NoDates<O> = true extends HasDate<O> ? { 'an answer holds a Date: use epochSeconds': never } : unknown;

export interface Operation {
  readonly service: ServiceName;
  readonly model: OperationModel;
  /** Principals allowed to call; empty for the unsigned operations. */
  readonly callers: readonly PrincipalKind[];
  /** The answer as AWS writes it, timestamps already epoch seconds (`epochSeconds`). */
  handle(context: OperationContext, input: never, store: Store): Promise<object>;
}

export interface SyncOperationContext extends OperationContext {
  principal: Principal;
  /**
   * The sync settings of the identity pool named in the path (the pipeline answers ResourceNotFoundException
   * when it is unknown), read once per request: the pool row is on every sync request's path. For an identity
   * (which reaches only its own pool) they were read with its credentials, in the same statement.
   */
  settings: PoolSyncSettings;
}

/** A Cognito Sync operation on one identity pool (all but ListIdentityPoolUsage). */
export function defineSyncOperation<I extends { IdentityPoolId: string }, O extends object>(definition: {
  model: OperationModel;
  callers: readonly PrincipalKind[];
  handle(context: SyncOperationContext, input: I, store: Store): Promise<O>;
} & NoDates<O>): Operation {
  return {
    service: 'sync',
    model: definition.model,
    callers: definition.callers,
    async handle(context: OperationContext, input: I, store: Store) {
      const { principal } = context;
      const settings =
        principal?.kind === 'identity' && principal.poolSettings && principal.identityPoolId === input.IdentityPoolId
          ? principal.poolSettings
          : await store.getPoolSyncSettings(input.IdentityPoolId);
      if (!settings) throw new ResourceNotFoundException(`IdentityPool '${input.IdentityPoolId}' not found.`);
      // Every field written out: spreading `context` and adding two would take V8's slow path on every request.
      const syncContext: SyncOperationContext = {
        requestId: context.requestId,
        principal: principal!,
        region: context.region,
        now: context.now,
        limits: context.limits,
        syncSessionTokens: context.syncSessionTokens,
        identity: context.identity,
        integrations: context.integrations,
        rateLimit: context.rateLimit,
        settings,
      };
      return definition.handle(syncContext, input, store);
    },
  } as Operation;
}

/** An operation that needs no pool lookup first (Cognito Identity operations, ListIdentityPoolUsage). */
export function defineOperation<I, O extends object>(definition: {
  service: ServiceName;
  model: OperationModel;
  callers: readonly PrincipalKind[];
  handle(context: OperationContext, input: I, store: Store): Promise<O>;
} & NoDates<O>): Operation {
  return definition as Operation;
}
