// ListRecords: the records changed after lastSyncCount (tombstones included), in SyncCount order, paginated,
// with the dataset's state and a SyncSessionToken for the UpdateRecords that follows.
import { decodePageToken, encodePageToken } from '../../core/page-token.js';
import { InvalidParameterException } from '../../errors.js';
import { syncedAfterRestoredBackup } from '../../core/restore.js';
import { missedDroppedRemovals } from '../../core/tombstones.js';
import { cognitoSyncOperations as model } from '../../model/cognito-sync.generated.js';
import { invalidValue } from '../../protocol/validate.js';
import type { RecordCursor } from '../../store/store.js';
import { defineSyncOperation } from '../operation.js';
import { pageSize } from '../pagination.js';
import { recordOutput } from './output-shapes.js';

interface ListRecordsInput {
  IdentityPoolId: string;
  IdentityId: string;
  DatasetName: string;
  LastSyncCount?: number;
  NextToken?: string;
  MaxResults?: number;
  SyncSessionToken?: string;
}

/**
 * A NextToken's position: after SyncCount `c` and key `k`, in the dataset whose last deletion was at SyncCount `d` and
 * whose tombstones were dropped through SyncCount `t` when the listing began (tokens of builds before 2026-12-07 have
 * no `d`, and those of builds before bounded tombstones no `t`).
 */
interface Cursor {
  c: number;
  k: string;
  d?: number;
  t?: number;
}

const isCount = (value: unknown) => value === undefined || Number.isSafeInteger(value);

const isCursor = (value: unknown): value is Cursor =>
  typeof value === 'object' &&
  value !== null &&
  Number.isSafeInteger((value as Cursor).c) &&
  typeof (value as Cursor).k === 'string' &&
  isCount((value as Cursor).d) &&
  isCount((value as Cursor).t);

export default defineSyncOperation({
  model: model.ListRecords,
  callers: ['identity', 'developer'],
  async handle(context, input: ListRecordsInput, store) {
    const lastSyncCount = input.LastSyncCount ?? 0;
    if (lastSyncCount < 0) throw invalidValue('lastSyncCount', lastSyncCount, 'Member must have value greater than or equal to 0');
    const limit = pageSize(input.MaxResults, context.limits.listRecordsDefaultPage, context.limits.listRecordsMaxPage);
    let after: RecordCursor | undefined;
    let listedSince: number | undefined;
    let droppedBefore = 0;
    if (input.NextToken !== undefined) {
      const position = decodePageToken(input.NextToken, isCursor);
      after = { syncCount: position.c, key: position.k };
      listedSince = position.d;
      droppedBefore = position.t ?? 0;
    }
    const key = { identityPoolId: input.IdentityPoolId, identityId: input.IdentityId, datasetName: input.DatasetName };
    const page = await store.listRecords(key, lastSyncCount, after, limit);
    // Deleted (and perhaps created again) since the first page: the pages read so far hold records of a dataset that
    // is gone, which the rest would be mixed with (a device pulling from 0 would keep them for good, since no count
    // tells it of the deletion). The listing must start over. AWS does not say; decisions.md, "ListRecords pages".
    if (listedSince !== undefined && listedSince !== page.deletedAtSyncCount) {
      throw new InvalidParameterException('The dataset was deleted since this NextToken was issued: list its records again from the start.');
    }
    // Likewise when tombstones the listing had still to reach were dropped meanwhile (core/tombstones.ts): at or past
    // its position. A removal made since the first page (of a record an earlier page returned) is such a tombstone too,
    // so this holds for a first pull, from 0, as well: without it the device kept that record for good.
    const dropped = page.tombstonesDroppedThrough;
    if (after !== undefined && dropped > droppedBefore && dropped >= after.syncCount) {
      throw new InvalidParameterException('Removals this listing had still to return were dropped since this NextToken was issued: list its records again from the start.');
    }
    const exists = page.dataset !== undefined;
    // Where the dataset's counter stands: its SyncCount, or the count its deletion took when it is gone.
    const reached = page.dataset?.syncCount ?? page.deletedAtSyncCount;
    // A device that synced at or before the last deletion must drop its copy (even if the dataset was recreated).
    const deletedAfterRequest = lastSyncCount > 0 && page.deletedAtSyncCount > 0 && (!exists || lastSyncCount <= page.deletedAtSyncCount);
    // A device that synced after the backup this database was restored from has history the server no longer has:
    // its count lies in the restore's gap (core/restore.ts), or, on a restore left unmarked, past anything the
    // dataset reached (SyncCounts never go back otherwise). Its copy is told to go as after a deletion, so that it
    // pulls the server's state again (decisions.md, "Backup and restore").
    // Likewise a device that synced before removals the dataset no longer remembers (core/tombstones.ts).
    const historyLost = lastSyncCount > reached || syncedAfterRestoredBackup(lastSyncCount, page.restored) || missedDroppedRemovals(lastSyncCount, dropped);
    return {
      Records: page.records.map(recordOutput),
      NextToken: page.next ? encodePageToken({ c: page.next.syncCount, k: page.next.key, d: listedSince ?? page.deletedAtSyncCount, t: dropped } satisfies Cursor) : undefined,
      Count: page.records.length,
      DatasetSyncCount: page.dataset?.syncCount ?? 0,
      LastModifiedBy: page.dataset?.lastModifiedBy,
      MergedDatasetNames: page.mergedDatasetNames,
      DatasetExists: exists,
      DatasetDeletedAfterRequestedSyncCount: deletedAfterRequest || historyLost,
      SyncSessionToken: context.syncSessionTokens.issue(key, context.now.getTime(), reached),
    };
  },
});
