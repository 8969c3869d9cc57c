// The names a merged identity's datasets take in the identity they are merged into (MergeDeveloperIdentities, and
// a login linked to a second identity).
import { ResourceConflictException } from '../errors.js';

/** The model's longest DatasetName: a merged name longer than this could not be read or deleted through the API. */
const MAX_DATASET_NAME_LENGTH = 128;

/**
 * `<name>.<sourceIdentityId>`, AWS's form, with `<name>` cut short from its end when the whole would pass 128
 * characters (an identity id is up to 55), so that every operation can still reach it. The client library names a
 * local merge the same way (`mergedDatasetName` in packages/client/src/identity-change.ts).
 */
export function mergedDatasetName(datasetName: string, sourceIdentityId: string): string {
  const suffix = `.${sourceIdentityId}`;
  return datasetName.slice(0, Math.max(1, MAX_DATASET_NAME_LENGTH - suffix.length)) + suffix;
}

/**
 * The merged name of each of the source's datasets, by name. Two long names that agree in every character kept
 * would merge into one name: the merge is refused (nothing is written) rather than one of them lost.
 */
export function mergedDatasetNames(datasetNames: readonly string[], sourceIdentityId: string): Map<string, string> {
  const merged = new Map<string, string>();
  const taken = new Map<string, string>();
  for (const name of datasetNames) {
    const mergedName = mergedDatasetName(name, sourceIdentityId);
    const other = taken.get(mergedName);
    if (other !== undefined) {
      throw new ResourceConflictException(`Datasets ${other} and ${name} of identity ${sourceIdentityId} would both be merged as ${mergedName}; delete one of them first.`);
    }
    taken.set(mergedName, name);
    merged.set(name, mergedName);
  }
  return merged;
}
