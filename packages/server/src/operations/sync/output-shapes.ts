// Store rows → the model's Dataset, Record and IdentityPoolUsage output shapes (timestamps as epoch seconds, as AWS writes them).
import type { DatasetRecord, IdentityPoolUsage, StoredRecord } from '../../store/store.js';
import { epochSeconds } from '../operation.js';

export function datasetOutput(dataset: DatasetRecord) {
  return {
    IdentityId: dataset.identityId,
    DatasetName: dataset.datasetName,
    CreationDate: epochSeconds(dataset.creationDate),
    LastModifiedDate: epochSeconds(dataset.lastModifiedDate),
    LastModifiedBy: dataset.lastModifiedBy,
    DataStorage: dataset.dataStorage,
    NumRecords: dataset.numRecords,
  };
}

/** A removed record is emitted without Value, which every client reads as "deleted". */
export function recordOutput(record: StoredRecord) {
  return {
    Key: record.key,
    // Undefined members are not written, and every record keeps one object shape.
    Value: record.value ?? undefined,
    SyncCount: record.syncCount,
    LastModifiedDate: epochSeconds(record.lastModifiedDate),
    LastModifiedBy: record.lastModifiedBy,
    DeviceLastModifiedDate: epochSeconds(record.deviceLastModifiedDate),
  };
}

export function poolUsageOutput(usage: IdentityPoolUsage) {
  return {
    IdentityPoolId: usage.identityPoolId,
    SyncSessionsCount: usage.syncSessionsCount,
    DataStorage: usage.dataStorage,
    LastModifiedDate: epochSeconds(usage.lastModifiedDate),
  };
}
