// Client-side validation that mirrors the service's constraints, so a bad key or a full dataset fails at
// put() with a clear error instead of at the next synchronize().
import { ValidationError } from './errors.ts';
import type { DatasetUsage } from './records.ts';

export interface ClientLimits {
  /** Record key length in characters (API model: 1..1024). */
  maxKeyLength: number;
  /** Record value size in UTF-8 bytes (1 MiB − 1, as the iOS SDK; a one-byte key then fills the dataset). */
  maxValueBytes: number;
  /** Dataset size: UTF-8 key + value over live records (1 MiB). */
  maxDatasetBytes: number;
  /** Live records per dataset (1,024). */
  maxRecordsPerDataset: number;
  /** Datasets per identity (20). */
  maxDatasetsPerIdentity: number;
}

/** AWS's and cognisync's defaults. A server started with larger `COGNISYNC_LIMIT_*` values needs matching ones here. */
export const defaultLimits: Readonly<ClientLimits> = Object.freeze({
  maxKeyLength: 1024,
  maxValueBytes: 1024 * 1024 - 1,
  maxDatasetBytes: 1024 * 1024,
  maxRecordsPerDataset: 1024,
  maxDatasetsPerIdentity: 20,
});

export const datasetNamePattern = /^[a-zA-Z0-9_.:-]{1,128}$/;

/** UTF-8 length without allocating an encoded copy (values can be a megabyte). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The server refuses U+0000 and lone surrogates in every string (they do not survive its stores). */
function hasUnstorableCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit === 0) return true;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) return true;
  }
  return false;
}

export function validateDatasetName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !datasetNamePattern.test(name)) {
    throw new ValidationError('InvalidDatasetName', `Dataset name ${JSON.stringify(name)} must be 1-128 characters of a-z, A-Z, 0-9, '_', '.', ':' or '-'`);
  }
  // The pattern allows them, but as a path segment URLs resolve them away (the request would address another
  // path), as they do for the AWS SDKs: a dataset named so could never sync.
  if (name === '.' || name === '..') throw new ValidationError('InvalidDatasetName', `Dataset name ${JSON.stringify(name)} cannot be used: it is a relative path segment in the API's URLs`);
}

export function validateKey(key: unknown, limits: ClientLimits): asserts key is string {
  if (typeof key !== 'string') throw new ValidationError('InvalidKey', `Record key must be a string, got ${typeof key}`);
  if (key.length < 1 || key.length > limits.maxKeyLength) {
    throw new ValidationError('InvalidKey', `Record key must be 1-${limits.maxKeyLength} characters, got ${key.length}`);
  }
  if (hasUnstorableCharacter(key)) throw new ValidationError('InvalidKey', 'Record key must not contain U+0000 or an unpaired surrogate');
}

export function validateValue(key: string, value: unknown, limits: ClientLimits): asserts value is string {
  if (typeof value !== 'string') {
    throw new ValidationError('InvalidValue', `Value of ${JSON.stringify(key)} must be a string (serialize objects yourself, e.g. JSON.stringify), got ${value === null ? 'null' : typeof value}`);
  }
  const bytes = utf8Length(value);
  if (bytes > limits.maxValueBytes) {
    throw new ValidationError('InvalidValue', `Value of ${JSON.stringify(key)} is ${bytes} bytes; the limit is ${limits.maxValueBytes} bytes`);
  }
  if (hasUnstorableCharacter(value)) throw new ValidationError('InvalidValue', `Value of ${JSON.stringify(key)} must not contain U+0000 or an unpaired surrogate`);
}

/** Adds (`sign` 1) or takes away (-1) what one record counts against its dataset's limits; a tombstone counts nothing. */
export function addUsage(usage: DatasetUsage, record: { key: string; value: string | null } | undefined, sign: 1 | -1): void {
  if (record === undefined || record.value === null) return;
  usage.numRecords += sign;
  usage.dataStorage += sign * (utf8Length(record.key) + utf8Length(record.value));
}

/** Checks the dataset-wide quotas against the usage a change would leave. */
/**
 * Refuses a dataset over its limits. With `before` (a local write), only a write that grows it is refused: a
 * dataset that a pull took over the limit (other devices' records added to this one's) can still shrink.
 */
export function validateDatasetSize(usage: DatasetUsage, limits: ClientLimits, datasetName: string, before?: DatasetUsage): void {
  if (usage.numRecords > limits.maxRecordsPerDataset && !(before && usage.numRecords <= before.numRecords)) {
    throw new ValidationError('TooManyRecords', `Dataset ${datasetName} would hold ${usage.numRecords} records; the limit is ${limits.maxRecordsPerDataset} (remove records to bring it under)`);
  }
  if (usage.dataStorage > limits.maxDatasetBytes && !(before && usage.dataStorage <= before.dataStorage)) {
    throw new ValidationError('DatasetTooLarge', `Dataset ${datasetName} would hold ${usage.dataStorage} bytes; the limit is ${limits.maxDatasetBytes} bytes (remove or shorten records to bring it under)`);
  }
}
