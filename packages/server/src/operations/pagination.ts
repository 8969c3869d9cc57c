// Page sizes and NextToken positions shared by the List* operations.
import { invalidValue } from '../protocol/validate.js';

/**
 * The page size for a MaxResults: the model gives no bounds, so below 1 is refused and anything above
 * the configured maximum is clamped to it (a client asking for more simply pages).
 */
export function pageSize(maxResults: number | undefined, defaultSize: number, maxSize: number): number {
  if (maxResults === undefined) return defaultSize;
  if (maxResults < 1) throw invalidValue('maxResults', maxResults, 'Member must have value greater than or equal to 1');
  return Math.min(maxResults, maxSize);
}

export const isNamePosition = (value: unknown): value is { n: string } =>
  typeof value === 'object' && value !== null && typeof (value as { n: unknown }).n === 'string';
