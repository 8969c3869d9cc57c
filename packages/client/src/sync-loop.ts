// The synchronize() algorithm for one dataset, written as an explicit state machine.
//
//                         synchronize()
//                               │  (lock "sync:<identity>/<dataset>": one sync per dataset across tabs/processes)
//                               ▼
//   ┌──────────────────────► PULL ───── ListRecords(lastSyncCount) over every page ── network/4xx ──► FAILED
//   │                           │  PUSH FIRST: this manager pulled the dataset < 5 min ago (its SyncSessionToken
//   │                           │  kept, no merged datasets) and a change to push is based on a server version
//   │                           ├─ (SyncCount > 0) ─► PUSH with that token, no pull; any 4xx refusal ─► PULL
//   │◄── BACKOFF ◄── 429 / 5xx ─┤
//   │                           │  (deleted locally? → DELETE_REMOTE → DONE)
//   │                           ▼
//   │                     HOOKS ── MergedDatasetNames / local `<name>.<oldId>` ─► onDatasetsMerged ─ false ─► CANCELLED
//   │                           │
//   │   ┌─ onDatasetDeleted ◄───┤ DatasetDeletedAfterRequestedSyncCount, or gone after we had synced
//   │   │  true: purge local     │  (edits not pushed stay when the server has the dataset)
//   │   │  false: re-create from local data
//   ├───┘ (lastSyncCount := 0)  ▼
//   │                       RESOLVE ── local modified ∧ remote changed ∧ values differ ─► onConflict ─ false ─► CANCELLED
//   │                           │      (remote echo of our own lost push, or equal values: not a conflict)
//   │                           ▼
//   │◄── local write raced ── APPLY   one transaction, compare-and-set on every record it touches;
//   │                           │      lastSyncCount := DatasetSyncCount (everything up to it is now local);
//   │                           │      no commit when nothing was pulled and the count did not move
//   │                           ▼
//   │                          PUSH ── nothing modified ─────────────────────────────────────────► DONE
//   │                           │      journal `pushing` durably, then UpdateRecords(SyncSessionToken)
//   │                           │
//   │◄── BACKOFF ◄── 409 / 429 / 5xx (attempt < maxAttempts; else FAILED: SyncRetriesExhaustedError)
//   │                           ▼
//   │                      ACKNOWLEDGE  one transaction: pushed records → unmodified at the new SyncCount
//   │                           │      (a record edited meanwhile stays modified, rebased on it);
//   │                           │      lastSyncCount := S only if S = lastSyncCount + 1 (no other device wrote between)
//   └──── S > lastSyncCount + 1 ┤
//                               ▼
//                              DONE ── lastSyncDate := now (in ACKNOWLEDGE's transaction when it comes from there),
//                                      release the lock, resolve the summary
//
// PUSH FIRST saves the pull's round trip when nobody else wrote: S = lastSyncCount + 1 proves it, exactly as after
// a pull, and anything else (S further on, a conflict, a token the server no longer takes) ends in the pull that was
// skipped. A push with a record still journaled by an earlier push whose answer never came pulls first, so that
// RESOLVE can recognise that write as our own. A push that changes only new keys (SyncCount 0) always pulls first: on a server whose deletion leaves the
// count where it was (not cognisync's, which takes the next one; AWS's is not documented), it would re-create a
// dataset deleted elsewhere at S = lastSyncCount + 1 and hide the deletion, where a patch based on a server version
// is refused (its record is gone) and the pull reports the deletion.
//
// No state reads the whole dataset: RESOLVE reads the pulled keys, PUSH the modified records (the store's index)
// and the dataset's usage (the store's running count), ACKNOWLEDGE the acknowledged keys. An incremental sync
// costs the same in a dataset of ten records as in one of a thousand.
//
// A crash or abort in any state leaves the store consistent: every transition that changes it is one atomic
// commit, lastSyncCount never passes a change the device has not stored, and an UpdateRecords whose answer
// was lost is recognised on the next pull by its journal (same value and DeviceLastModifiedDate).
import { SyncConflict, type ConflictResolution } from './conflicts.ts';
import { CognitoSyncClientError, ServiceError, SyncCancelledError, SyncRetriesExhaustedError } from './errors.ts';
import { validateDatasetSize, validateValue, type ClientLimits } from './limits.ts';
import { isJournaled, journalPush, type DatasetMetadata, type LocalRecord } from './records.ts';
import { sleep } from './sleep.ts';
import type { LocalStore } from './stores/store.ts';
import type { CognitoSyncApi, PulledChanges, RecordPatch, RemoteRecord } from './transport/cognito-sync-api.ts';

export interface RetryPolicy {
  /** Attempts per synchronize() (the first plus retries after 409/429/5xx) before SyncRetriesExhaustedError (default 5, as the iOS SDK). */
  maxAttempts: number;
  /** First backoff delay; doubles per attempt, with jitter in [½, 1] of it (default 100 ms). */
  baseDelayMs: number;
  /** Largest backoff delay (default 3 s). */
  maxDelayMs: number;
}

export const defaultRetryPolicy: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 3000 });

export interface SynchronizeOptions {
  /**
   * Called with every key changed both locally and remotely. Return one resolution per conflict
   * (`conflict.resolveWithRemote()`, `.resolveWithLocal()`, `.resolveWithValue(v)`), or `false` to stop the sync
   * (local changes are kept). Default: the remote version wins.
   */
  onConflict?: (conflicts: SyncConflict[]) => ConflictResolution[] | false | Promise<ConflictResolution[] | false>;
  /**
   * The dataset was deleted on the server since this device last synced it. Return `true` (default) to delete
   * the local copy as well, `false` to keep the local data and push it as a new dataset.
   */
  onDatasetDeleted?: (datasetName: string) => boolean | Promise<boolean>;
  /**
   * Datasets of a merged identity (`<name>.<otherIdentityId>`, from the server after an identity merge, or local
   * after an identity change) wait to be merged into this one. Open them with `manager.openOrCreateDataset(name)`,
   * copy what you need, then `delete()` and synchronize them, or they are reported again. Return `false` to stop
   * this sync; default: continue.
   */
  onDatasetsMerged?: (datasetNames: string[]) => boolean | Promise<boolean>;
  /** Pull every record again (from SyncCount 0), as after a fresh install; local changes are still kept. */
  force?: boolean;
  signal?: AbortSignal;
}

export interface SyncSummary {
  /** Remote changes written locally (keys whose local value changed because of the server). */
  pulled: number;
  /** Records pushed and acknowledged. */
  pushed: number;
  /** Conflicts handed to onConflict (or resolved by the default). */
  conflicts: number;
  /** Attempts: 1, plus one per retry after a 409, 429, 5xx or expired session token. */
  attempts: number;
  /** Keys whose local value changed because of the server. */
  changedKeys: string[];
  /** The dataset SyncCount this device now holds. */
  lastSyncCount: number;
  /** Merged datasets reported to onDatasetsMerged. */
  mergedDatasetNames: string[];
  /** True when the dataset was deleted (locally requested, or on the server and accepted by onDatasetDeleted). */
  datasetDeleted: boolean;
}

/** The SyncSessionToken of a manager's latest pull of a dataset, for PUSH FIRST. */
export interface RecentToken {
  token: string;
  /** When the pull that got it ended (ctx.now()). */
  at: number;
}

/** How long after its pull a SyncSessionToken is used for PUSH FIRST by default (cognisync accepts them for 1 h). */
export const defaultPushFirstWithinMs = 5 * 60_000;

export interface SyncContext {
  store: LocalStore;
  api: CognitoSyncApi;
  identityPoolId: string;
  identityId: string;
  datasetName: string;
  deviceId?: string;
  limits: ClientLimits;
  retry: RetryPolicy;
  now: () => number;
  random: () => number;
  /** The manager's recent tokens by `identityId/datasetName` (in memory; cleared when the identity changes). */
  recentTokens?: Map<string, RecentToken>;
  /** PUSH FIRST only with a token got less than this long ago; 0: always pull first. */
  pushFirstWithinMs?: number;
}

type SyncState = 'pull' | 'deleteRemote' | 'hooks' | 'remoteDeleted' | 'resolve' | 'push' | 'acknowledge' | 'done';

/** Rounds through PULL one synchronize() may take (pushes racing other devices, local writes racing the apply). */
const maxRounds = 20;

const fromRemote = (r: RemoteRecord): LocalRecord => ({
  key: r.key,
  value: r.value,
  syncCount: r.syncCount,
  modified: false,
  deviceLastModifiedDate: r.deviceLastModifiedDate,
  lastModifiedDate: r.lastModifiedDate,
  lastModifiedBy: r.lastModifiedBy,
  pushing: null,
});

/** The remote record is what one of our own earlier UpdateRecords wrote (its answer was lost, or it landed late). */
const isEchoOfOwnPush = (local: LocalRecord, remote: RemoteRecord) => isJournaled(local.pushing, remote);

/** A record journaled for a push and not edited since: what the server answers for it is what it now holds. */
const unchangedSincePush = (local: LocalRecord) =>
  local.modified && local.pushing !== null && local.value === local.pushing.value && local.deviceLastModifiedDate === local.pushing.deviceLastModifiedDate;

/** Runs one synchronize() of a dataset. The caller holds the dataset's sync lock. */
export async function runSync(ctx: SyncContext, options: SynchronizeOptions): Promise<SyncSummary> {
  const { store, api, identityId, datasetName, signal } = { ...ctx, signal: options.signal };
  const summary: SyncSummary = {
    pulled: 0,
    pushed: 0,
    conflicts: 0,
    attempts: 1,
    changedKeys: [],
    lastSyncCount: 0,
    mergedDatasetNames: [],
    datasetDeleted: false,
  };
  const changed = new Set<string>();
  let state: SyncState = 'pull';
  let rounds = 0;
  let force = options.force === true;
  let mergedReported = false;
  let pulled: PulledChanges | undefined;
  let pushedPatches: RecordPatch[] = [];
  let acknowledged: RemoteRecord[] = [];
  let countBeforePush = 0;
  /** The dataset row as the current round's PULL read it. */
  let pulledFrom: DatasetMetadata | undefined;
  /** Edits kept as new records by REMOTE_DELETED (see there), with the SyncCount each was based on. */
  const keptBases = new Map<string, number>();
  /** ACKNOWLEDGE already wrote lastSyncDate in its transaction. */
  let syncDateWritten = false;
  /** PUSH runs before any pull of this sync, with a recent token (PUSH FIRST). */
  let pushFirst = false;
  const tokenKey = `${identityId}/${datasetName}`;
  /** When `pulled`'s token was got, and whether a later sync may push first with it (no merged datasets were seen). */
  let tokenAt = 0;
  let tokenReusable = false;

  const dataset = async () => (await store.getDataset(identityId, datasetName)) ?? undefined;
  /**
   * After a pull from 0, which returns every record the server has (its removals too): 'lost' when this device holds
   * a record at a count the server no longer has, absent there or there at a lower count. The server lost that
   * history: the dataset was deleted (and maybe created again), or restored from a backup, since. Only a pull from
   * the device's count is told so (DatasetDeletedAfterRequestedSyncCount); a forced pull is not, nor a device whose
   * count was never stored (a sync cut between its push and the pull after it). So the sync goes through
   * onDatasetDeleted as for a deletion it is told of. Left alone, such records stayed on the device for good,
   * differing from the server's, and an edit of one was refused with a conflict at every sync. The device never keeps
   * a key at a count the server did not store (ACKNOWLEDGE drops a new key a SyncTrigger function dropped, and keeps
   * no answered removal of a key it does not hold), so this does not mistake a healthy dataset for a deleted one.
   * First, while the dataset exists there, a removal held as synced for a key the server does not have goes without
   * a question: both sides agree the key is absent (an earlier client kept such removals for keys a SyncTrigger
   * function dropped; a deletion elsewhere leaves them too, and re-putting the key would be refused at every sync).
   * Without the dataset, such removals are the one sign of its deletion and stay. 'raced' when that commit met a
   * local write (pull again).
   */
  const checkFullPull = async (from: PulledChanges): Promise<'lost' | 'kept' | 'raced'> => {
    const remote = new Map(from.records.map((r) => [r.key, r.syncCount]));
    const stale = (await store.listRecords(identityId, datasetName)).filter((r) => r.syncCount > 0 && !(r.syncCount <= (remote.get(r.key) ?? 0)));
    const dropped = from.datasetExists ? stale.filter((r) => r.value === null && !r.modified && !remote.has(r.key)) : [];
    if (dropped.length > 0) {
      const committed = await store.commit({ datasets: [{ identityId, datasetName, expect: dropped.map((r) => ({ key: r.key, record: r })), remove: dropped.map((r) => r.key) }] });
      if (!committed) return 'raced';
    }
    return stale.length > dropped.length ? 'lost' : 'kept';
  };
  /** One more attempt after a jittered exponential pause, or SyncRetriesExhaustedError when none are left. */
  const backoff = async (error: ServiceError) => {
    if (summary.attempts >= ctx.retry.maxAttempts) {
      throw new SyncRetriesExhaustedError(`synchronize() of ${datasetName} gave up after ${summary.attempts} attempts: ${error.name}: ${error.message}`, { cause: error });
    }
    const delay = Math.min(ctx.retry.maxDelayMs, ctx.retry.baseDelayMs * 2 ** (summary.attempts - 1)) * (0.5 + ctx.random() / 2);
    summary.attempts++;
    await sleep(delay, signal);
  };

  for (;;) {
    signal?.throwIfAborted();
    switch (state) {
      case 'pull': {
        if (++rounds > maxRounds) throw new CognitoSyncClientError(`synchronize() of ${datasetName} did not settle after ${maxRounds} rounds`);
        const meta = (pulledFrom = await dataset());
        if (meta?.deleted) {
          state = 'deleteRemote';
          break;
        }
        const since = force ? 0 : (meta?.lastSyncCount ?? 0);
        const recent = rounds === 1 && since > 0 ? ctx.recentTokens?.get(tokenKey) : undefined;
        if (recent && ctx.now() - recent.at < (ctx.pushFirstWithinMs ?? defaultPushFirstWithinMs)) {
          pulled = { records: [], datasetSyncCount: since, datasetExists: true, datasetDeletedAfterRequestedSyncCount: false, mergedDatasetNames: [], syncSessionToken: recent.token };
          pushFirst = true;
          tokenAt = recent.at;
          tokenReusable = true;
          state = 'push';
          break;
        }
        try {
          pulled = await api.pullChanges(ctx.identityPoolId, identityId, datasetName, since, signal);
        } catch (error) {
          // Throttling (429) and server faults are worth another try after a pause, like a failed push.
          if (!(error instanceof ServiceError && error.retryable)) throw error;
          await backoff(error);
          break;
        }
        // Merged datasets (the server's, or local ones HOOKS found in an earlier round of this sync) must reach
        // onDatasetsMerged at every sync, so a dataset that has them never pushes first.
        // (A dataset the server does not have yet gets its token kept once a push created it, in ACKNOWLEDGE.)
        tokenAt = ctx.now();
        tokenReusable = pulled.mergedDatasetNames.length === 0 && summary.mergedDatasetNames.length === 0;
        if (tokenReusable && pulled.datasetExists) ctx.recentTokens?.set(tokenKey, { token: pulled.syncSessionToken, at: tokenAt });
        else ctx.recentTokens?.delete(tokenKey);
        force = false;
        const fullPull = since === 0 ? await checkFullPull(pulled) : undefined;
        if (fullPull === 'raced') break;
        const deletedSince = since > 0 && (pulled.datasetDeletedAfterRequestedSyncCount || !pulled.datasetExists);
        state = deletedSince || fullPull === 'lost' ? 'remoteDeleted' : 'hooks';
        break;
      }

      case 'deleteRemote': {
        try {
          await api.deleteDataset(ctx.identityPoolId, identityId, datasetName, signal);
        } catch (error) {
          // Never synced, or another device deleted it first: either way it is gone.
          if (!(error instanceof ServiceError && error.name === 'ResourceNotFoundException')) throw error;
        }
        await store.commit({ datasets: [{ identityId, datasetName, purge: true, metadata: null }] });
        summary.datasetDeleted = true;
        return summary;
      }

      case 'remoteDeleted': {
        const dropLocal = (await options.onDatasetDeleted?.(datasetName)) ?? true;
        const records = await store.listRecords(identityId, datasetName);
        if (dropLocal) {
          // The dataset goes from this device as it went from the server (listDatasets() no longer shows it); the pull
          // that follows brings it back only if another device has re-created it. When the server has the dataset (it
          // was created again elsewhere, or lost history this device had not seen: a restore, removals it forgot), edits
          // not yet pushed stay, as new ones: the pull meets them in RESOLVE (onConflict) or the push sends them.
          const edits = pulled?.datasetExists ? records.filter((r) => r.modified) : [];
          for (const r of edits) keptBases.set(r.key, r.syncCount);
          const put = edits.map((r) => ({ ...r, syncCount: 0, pushing: null }));
          await store.commit({ datasets: [put.length ? { identityId, datasetName, purge: true, put, metadata: { lastSyncCount: 0 } } : { identityId, datasetName, purge: true, metadata: null }] });
          for (const r of records) if (r.value !== null && !r.modified) changed.add(r.key);
          summary.datasetDeleted = true;
        } else {
          // Keep what this device has and offer it to the server as a new dataset: every live record is new.
          const live = records.filter((r) => r.value !== null).map((r) => ({ ...r, syncCount: 0, modified: true, pushing: null }));
          await store.commit({ datasets: [{ identityId, datasetName, purge: true, put: live, metadata: { lastSyncCount: 0 } }] });
        }
        state = 'pull';
        break;
      }

      case 'hooks': {
        if (!mergedReported) {
          mergedReported = true;
          const local = (await store.listDatasets(identityId)).filter((d) => d.mergedInto === datasetName && !d.deleted).map((d) => d.datasetName);
          const names = [...new Set([...local, ...pulled!.mergedDatasetNames])].sort();
          if (names.length) {
            tokenReusable = false;
            ctx.recentTokens?.delete(tokenKey);
            summary.mergedDatasetNames = names;
            if (options.onDatasetsMerged && (await options.onDatasetsMerged(names)) === false) {
              throw new SyncCancelledError(`onDatasetsMerged stopped the sync of ${datasetName}`);
            }
          }
        }
        state = 'resolve';
        break;
      }

      case 'resolve': {
        const remote = pulled!;
        const local = new Map((await store.getRecords(identityId, datasetName, remote.records.map((r) => r.key))).map((r) => [r.key, r]));
        const put: LocalRecord[] = [];
        const expect: Array<{ key: string; record: LocalRecord | undefined }> = [];
        const conflicts: SyncConflict[] = [];
        const changedHere: string[] = [];
        for (const r of remote.records) {
          const l = local.get(r.key);
          if (l && !l.modified && isEchoOfOwnPush(l, r) && l.value !== r.value) {
            // Our own put, given up on, landed after its key's removal was answered (a tombstone kept its journal;
            // see ACKNOWLEDGE): the removal stands, based on it, and is pushed again.
            put.push({ ...l, syncCount: r.syncCount, modified: true, pushing: null });
            expect.push({ key: r.key, record: l });
          } else if (!l || !l.modified) {
            if (l && l.syncCount > r.syncCount) continue; // already newer here (a forced pull re-reading old data)
            if ((l?.value ?? null) !== r.value) changedHere.push(r.key);
            put.push(fromRemote(r));
            expect.push({ key: r.key, record: l });
          } else if (isEchoOfOwnPush(l, r) || l.value === r.value) {
            // Our lost push, or both sides wrote the same value: no conflict. Rebase on the server's version and
            // stay modified only if the local value moved on since.
            put.push(l.value === r.value ? fromRemote(r) : { ...l, syncCount: r.syncCount, pushing: null });
            expect.push({ key: r.key, record: l });
          } else if (l.syncCount === r.syncCount) {
            // Our change is based on exactly this version: nothing to resolve, it will be pushed.
          } else if (keptBases.get(r.key) === r.syncCount) {
            // An edit REMOTE_DELETED kept as new, based on exactly this version (nobody else changed the key while the
            // server lost history this device had not seen): based on it again, it will be pushed.
            put.push({ ...l, syncCount: r.syncCount, pushing: null });
            expect.push({ key: r.key, record: l });
          } else {
            conflicts.push(new SyncConflict(datasetName, l, r));
          }
        }
        if (conflicts.length) {
          summary.conflicts += conflicts.length;
          const answer = options.onConflict ? await options.onConflict(conflicts) : conflicts.map((c) => c.resolveWithRemote());
          if (answer === false) throw new SyncCancelledError(`onConflict stopped the sync of ${datasetName}`);
          const byKey = new Map(answer.map((a) => [a.key, a]));
          for (const conflict of conflicts) {
            const resolution = byKey.get(conflict.key);
            if (!resolution) throw new CognitoSyncClientError(`onConflict returned no resolution for key ${JSON.stringify(conflict.key)}`);
            const l = conflict.localRecord;
            const r = conflict.remoteRecord;
            expect.push({ key: l.key, record: l });
            if (resolution.resolution === 'remote') {
              if (l.value !== r.value) changedHere.push(l.key);
              put.push(fromRemote(r));
            } else if (resolution.resolution === 'local') {
              put.push({ ...l, syncCount: r.syncCount, pushing: null });
            } else {
              if (resolution.value !== null) validateValue(l.key, resolution.value, ctx.limits);
              if (resolution.value !== l.value) changedHere.push(l.key);
              put.push({ ...l, value: resolution.value, syncCount: r.syncCount, modified: true, deviceLastModifiedDate: ctx.now(), lastModifiedDate: ctx.now(), pushing: null });
            }
          }
        }
        // Nothing pulled to store and the count unchanged (the usual sync of a device that only pushes): no commit. A
        // dataset this device does not hold (deleted here or on the server) that the server does not have either is
        // not created by a sync: it would come back as an empty dataset in listDatasets().
        const unchanged = put.length === 0 && (pulledFrom === undefined ? !remote.datasetExists : pulledFrom.lastSyncCount === remote.datasetSyncCount);
        const committed =
          unchanged || (await store.commit({ datasets: [{ identityId, datasetName, expect, put, metadata: { lastSyncCount: remote.datasetSyncCount } }] }));
        if (!committed) {
          // A put() landed while we were resolving: start over from a fresh pull.
          state = 'pull';
          break;
        }
        for (const key of changedHere) changed.add(key);
        summary.lastSyncCount = remote.datasetSyncCount;
        state = 'push';
        break;
      }

      case 'push': {
        const dirty = await store.listModifiedRecords(identityId, datasetName);
        // A key created and removed again before it ever reached the server has nothing to tell anyone. One whose push
        // went unanswered (`pushing` set) may have reached it: its removal is pushed, after the pull that settles the
        // lost answer (QA: dropped here, the removal was lost and the server's copy pulled back).
        const neverSent = (r: LocalRecord) => r.value === null && r.syncCount === 0 && r.pushing === null;
        const neverSynced = dirty.filter(neverSent);
        const toPush = dirty.filter((r) => !neverSent(r));
        if (neverSynced.length) {
          await store.commit({
            datasets: [{ identityId, datasetName, expect: neverSynced.map((r) => ({ key: r.key, record: r })), remove: neverSynced.map((r) => r.key) }],
          });
        }
        if (pushFirst && (!toPush.some((r) => r.syncCount > 0) || toPush.some((r) => r.pushing !== null))) {
          // Nothing to push, or only new keys: pull first after all (see PUSH FIRST above). So also when an earlier
          // push's answer never came: only a pull tells whether the server has it, and journaling this push would
          // overwrite the record of what that one sent (RESOLVE would then take our own write for a conflict).
          pushFirst = false;
          state = 'pull';
          break;
        }
        if (!toPush.length) {
          state = 'done';
          break;
        }
        validateDatasetSize(await store.getDatasetUsage(identityId, datasetName), ctx.limits, datasetName);
        const journaled = toPush.map((r) => ({ ...r, pushing: journalPush(r) }));
        if (!(await store.commit({ datasets: [{ identityId, datasetName, expect: toPush.map((r) => ({ key: r.key, record: r })), put: journaled }] }))) {
          state = 'pull';
          break;
        }
        pushedPatches = toPush.map((r) => ({
          op: r.value === null ? 'remove' : 'replace',
          key: r.key,
          ...(r.value === null ? {} : { value: r.value }),
          syncCount: r.syncCount,
          deviceLastModifiedDate: r.deviceLastModifiedDate,
        }));
        countBeforePush = (await dataset())?.lastSyncCount ?? 0;
        try {
          acknowledged = await api.updateRecords(
            { identityPoolId: ctx.identityPoolId, identityId, datasetName, syncSessionToken: pulled!.syncSessionToken, patches: pushedPatches, deviceId: ctx.deviceId },
            signal,
          );
        } catch (error) {
          if (pushFirst && error instanceof ServiceError && error.statusCode >= 400 && error.statusCode < 500 && error.statusCode !== 429) {
            // Refused without a pull before it (a conflict, a token the server no longer takes, ...): the pull that was
            // skipped shows why, or meets the same error itself. Not an attempt, and no pause.
            ctx.recentTokens?.delete(tokenKey);
            pushFirst = false;
            state = 'pull';
            break;
          }
          // An expired SyncSessionToken (a slow onConflict) is cured by a fresh pull, like a conflict.
          const staleToken = error instanceof ServiceError && error.name === 'InvalidParameterException' && /SyncSessionToken/i.test(error.message);
          if (!(error instanceof ServiceError && (error.retryable || staleToken))) throw error;
          await backoff(error);
          state = 'pull';
          break;
        }
        pushFirst = false;
        if (tokenReusable) ctx.recentTokens?.set(tokenKey, { token: pulled!.syncSessionToken, at: tokenAt });
        state = 'acknowledge';
        break;
      }

      case 'acknowledge': {
        const newCount = acknowledged.reduce((max, r) => Math.max(max, r.syncCount), 0);
        const local = new Map((await store.getRecords(identityId, datasetName, acknowledged.map((r) => r.key))).map((r) => [r.key, r]));
        const pushedAt = new Map(pushedPatches.map((patch) => [patch.key, patch.syncCount]));
        const put: LocalRecord[] = [];
        const remove: string[] = [];
        const expect: Array<{ key: string; record: LocalRecord | undefined }> = [];
        const changedHere: string[] = [];
        /** An answered record this device could not take (edited here meanwhile): a pull must bring it back. */
        let untaken = false;
        for (const r of acknowledged) {
          const l = local.get(r.key);
          const pushedFrom = pushedAt.get(r.key);
          if (pushedFrom === undefined) {
            // A record the push did not send, which a SyncTrigger function added or rewrote: the server's, unless a
            // local edit of it waits (then a pull shows it, and onConflict decides). A removal of a key this device
            // does not hold is answered but not stored (the server never held it either): nothing to keep.
            if (!l && r.value === null) continue;
            if (l?.modified) {
              untaken = true;
              continue;
            }
            expect.push({ key: r.key, record: l });
            put.push(fromRemote(r));
            if ((l?.value ?? null) !== r.value) changedHere.push(r.key);
            continue;
          }
          if (!l) continue;
          expect.push({ key: r.key, record: l });
          // A new key answered without a value was never stored (a SyncTrigger function dropped it): the server has no
          // record of it, so none stays here at the answer's count (it would look like a record the server lost).
          const neverStored = pushedFrom === 0 && r.value === null;
          // A removal answered as not stored (the server still has the key at count 0): an earlier put of it given up
          // on (journaled) may still land, so the journal stays to recognise it as ours (see RESOLVE). Stored, no
          // earlier push can. (A put a SyncTrigger function dropped is the server's decision: not kept.)
          const mayLandLater =
            neverStored && l.pushing !== null && l.pushing.value === null && (l.pushing.earlier ?? []).some((version) => version.value !== null);
          if (unchangedSincePush(l)) {
            // The answer is what the server now holds, also when it differs from what was pushed (rewritten or
            // dropped by a SyncTrigger function): kept modified, it would be pushed again at every sync.
            if (mayLandLater) put.push({ ...l, modified: false, syncCount: 0 });
            else if (neverStored) remove.push(r.key);
            else put.push(fromRemote(r));
            if (l.value !== r.value) changedHere.push(r.key);
          } else {
            put.push({ ...l, syncCount: neverStored ? 0 : r.syncCount, pushing: mayLandLater ? l.pushing : null });
          }
        }
        // Each UpdateRecords raises the dataset count by one, so S = last + 1 proves no other device wrote since our
        // pull. Otherwise keep the count and pull again: the gap holds someone else's changes.
        const fastForward = newCount === countBeforePush + 1 && !untaken;
        // Fast-forwarded, the sync is done: DONE's lastSyncDate goes into this transaction instead of one more.
        const metadata = fastForward ? { lastSyncCount: newCount, lastSyncDate: ctx.now() } : undefined;
        if (!(await store.commit({ datasets: [{ identityId, datasetName, expect, put, remove, ...(metadata ? { metadata } : {}) }] }))) {
          // A put() raced the acknowledgement: re-read and rebase again (the server state is unchanged).
          if (++rounds > maxRounds) throw new CognitoSyncClientError(`synchronize() of ${datasetName} did not settle after ${maxRounds} rounds`);
          break;
        }
        for (const key of changedHere) changed.add(key);
        summary.pushed += acknowledged.filter((r) => pushedAt.has(r.key)).length;
        if (fastForward) summary.lastSyncCount = newCount;
        syncDateWritten = fastForward;
        state = fastForward ? 'done' : 'pull';
        break;
      }

      case 'done': {
        // The sync date goes on a dataset this device holds; it does not create one (see HOOKS).
        if (!syncDateWritten && (await dataset())) await store.commit({ datasets: [{ identityId, datasetName, metadata: { lastSyncDate: ctx.now() } }] });
        summary.changedKeys = [...changed].sort();
        summary.pulled = summary.changedKeys.length;
        summary.lastSyncCount = (await dataset())?.lastSyncCount ?? summary.lastSyncCount;
        return summary;
      }
    }
  }
}
