// The Cognito Sync operations the client uses, as REST-JSON calls (2014-06-30 model), with their pagination.
import { encodeLabel, fetchOrNetworkError, learnedClockSkew, prepareAwsRequest, sendAwsRequest, serviceErrorOf, type AwsCredentials, type AwsRequest, type HttpExchange } from './signed-fetch.ts';
import { ServiceError } from '../errors.ts';

export interface RemoteRecord {
  key: string;
  /** null: the record was removed (the wire omits Value). */
  value: string | null;
  syncCount: number;
  lastModifiedDate: number;
  lastModifiedBy: string;
  deviceLastModifiedDate: number;
}

export interface RemoteDataset {
  datasetName: string;
  creationDate: number;
  lastModifiedDate: number;
  lastModifiedBy: string;
  dataStorage: number;
  numRecords: number;
}

export interface PulledChanges {
  /** Every record changed after the requested count, the newest version of each key only. */
  records: RemoteRecord[];
  datasetSyncCount: number;
  datasetExists: boolean;
  datasetDeletedAfterRequestedSyncCount: boolean;
  mergedDatasetNames: string[];
  syncSessionToken: string;
}

export interface RecordPatch {
  op: 'replace' | 'remove';
  key: string;
  value?: string;
  syncCount: number;
  deviceLastModifiedDate: number;
}

interface WireRecord {
  Key?: string;
  Value?: string;
  SyncCount?: number;
  LastModifiedDate?: number;
  LastModifiedBy?: string;
  DeviceLastModifiedDate?: number;
}

/** Epoch seconds (fractional) on the wire ↔ ms locally. */
const toMs = (seconds: number | undefined) => (seconds === undefined ? 0 : Math.round(seconds * 1000));

const fromWire = (r: WireRecord): RemoteRecord => ({
  key: r.Key ?? '',
  value: r.Value ?? null,
  syncCount: r.SyncCount ?? 0,
  lastModifiedDate: toMs(r.LastModifiedDate),
  lastModifiedBy: r.LastModifiedBy ?? '',
  deviceLastModifiedDate: toMs(r.DeviceLastModifiedDate),
});

/** One committed change, as cognisync's live stream sends it. */
export interface LiveChange {
  identityPoolId: string;
  identityId: string;
  datasetName: string;
  syncCount: number;
  /** UpdateRecords' DeviceId of the writer; null when it gave none (and for DeleteDataset). */
  deviceId: string | null;
}

export interface ApiConfig {
  endpoint: string;
  region: string;
  /** For the live stream (a streamed answer), and for the other calls when `exchange` is absent. */
  fetch: typeof fetch;
  /** How the other calls are sent (node:http in Node, see node-http.ts). */
  exchange?: HttpExchange;
  /** See AwsRequest.answerTimeoutMs. */
  answerTimeoutMs?: number | undefined;
  credentials: () => Promise<AwsCredentials>;
}

/** Page sizes of the SDK sync managers (ListRecords 1024, ListDatasets 64). */
const recordsPage = 1024;
const datasetsPage = 64;

export class CognitoSyncApi {
  constructor(private readonly config: ApiConfig) {}

  private async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, options: { query?: Record<string, string | undefined>; body?: unknown; signal?: AbortSignal } = {}) {
    return sendAwsRequest<T>({
      method,
      path,
      endpoint: this.config.endpoint,
      region: this.config.region,
      service: 'cognito-sync',
      credentials: await this.config.credentials(),
      fetch: this.config.fetch,
      exchange: this.config.exchange,
      answerTimeoutMs: this.config.answerTimeoutMs,
      ...options,
    });
  }

  private static datasetPath(identityPoolId: string, identityId: string, datasetName?: string) {
    const base = `/identitypools/${encodeLabel(identityPoolId)}/identities/${encodeLabel(identityId)}/datasets`;
    return datasetName === undefined ? base : `${base}/${encodeLabel(datasetName)}`;
  }

  /**
   * ListRecords over every page. Later pages may repeat a key changed meanwhile; the highest SyncCount wins. A dataset
   * deleted between two pages (and perhaps created again) makes the server refuse the next page's NextToken: the pages
   * read so far are of a dataset that is gone, so the listing starts over, up to twice. So does a cognisync server that
   * dropped, between two pages, tombstones the listing had still to return (a removal of a record an earlier page
   * returned among them).
   */
  async pullChanges(identityPoolId: string, identityId: string, datasetName: string, lastSyncCount: number, signal?: AbortSignal): Promise<PulledChanges> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readPages(identityPoolId, identityId, datasetName, lastSyncCount, signal);
      } catch (error) {
        if (attempt < 3 && isListingToStartOver(error)) continue;
        throw error;
      }
    }
  }

  private async readPages(identityPoolId: string, identityId: string, datasetName: string, lastSyncCount: number, signal?: AbortSignal): Promise<PulledChanges> {
    const latest = new Map<string, RemoteRecord>();
    let nextToken: string | undefined;
    let page: {
      Records?: WireRecord[];
      NextToken?: string;
      DatasetSyncCount?: number;
      DatasetExists?: boolean;
      DatasetDeletedAfterRequestedSyncCount?: boolean;
      MergedDatasetNames?: string[];
      SyncSessionToken?: string;
    };
    let deletedAfter = false;
    const merged = new Set<string>();
    do {
      page = await this.call('GET', `${CognitoSyncApi.datasetPath(identityPoolId, identityId, datasetName)}/records`, {
        query: { lastSyncCount: String(lastSyncCount), maxResults: String(recordsPage), nextToken },
        signal,
      });
      for (const wire of page.Records ?? []) {
        const record = fromWire(wire);
        const seen = latest.get(record.key);
        if (!seen || seen.syncCount < record.syncCount) latest.set(record.key, record);
      }
      deletedAfter ||= page.DatasetDeletedAfterRequestedSyncCount === true;
      for (const name of page.MergedDatasetNames ?? []) merged.add(name);
      nextToken = page.NextToken;
    } while (nextToken);
    return {
      // A dataset deleted while its pages were read: what the earlier pages held is gone too.
      records: page.DatasetExists === false ? [] : [...latest.values()],
      // The last page's count is safe to adopt: any write at or below it committed before that page was read,
      // and its records sort after every earlier page's position, so some page returned them.
      datasetSyncCount: page.DatasetSyncCount ?? 0,
      datasetExists: page.DatasetExists ?? true,
      datasetDeletedAfterRequestedSyncCount: deletedAfter,
      mergedDatasetNames: [...merged].sort(),
      syncSessionToken: page.SyncSessionToken ?? '',
    };
  }

  async updateRecords(
    input: { identityPoolId: string; identityId: string; datasetName: string; syncSessionToken: string; patches: RecordPatch[]; deviceId?: string },
    signal?: AbortSignal,
  ): Promise<RemoteRecord[]> {
    const result = await this.call<{ Records?: WireRecord[] }>('POST', CognitoSyncApi.datasetPath(input.identityPoolId, input.identityId, input.datasetName), {
      body: {
        SyncSessionToken: input.syncSessionToken,
        ...(input.deviceId ? { DeviceId: input.deviceId } : {}),
        RecordPatches: input.patches.map((p) => ({
          Op: p.op,
          Key: p.key,
          ...(p.value === undefined ? {} : { Value: p.value }),
          SyncCount: p.syncCount,
          DeviceLastModifiedDate: p.deviceLastModifiedDate / 1000,
        })),
      },
      signal,
    });
    return (result.Records ?? []).map(fromWire);
  }

  async deleteDataset(identityPoolId: string, identityId: string, datasetName: string, signal?: AbortSignal): Promise<void> {
    await this.call('DELETE', CognitoSyncApi.datasetPath(identityPoolId, identityId, datasetName), { signal });
  }

  async listDatasets(identityPoolId: string, identityId: string, signal?: AbortSignal): Promise<RemoteDataset[]> {
    const datasets: RemoteDataset[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.call<{ Datasets?: Array<Record<string, unknown>>; NextToken?: string }>('GET', CognitoSyncApi.datasetPath(identityPoolId, identityId), {
        query: { maxResults: String(datasetsPage), nextToken },
        signal,
      });
      for (const d of page.Datasets ?? []) {
        datasets.push({
          datasetName: String(d.DatasetName ?? ''),
          creationDate: toMs(d.CreationDate as number | undefined),
          lastModifiedDate: toMs(d.LastModifiedDate as number | undefined),
          lastModifiedBy: String(d.LastModifiedBy ?? ''),
          dataStorage: Number(d.DataStorage ?? 0),
          numRecords: Number(d.NumRecords ?? 0),
        });
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return datasets;
  }

  /**
   * Opens cognisync's live stream of the identity's changes (`GET /live/identitypools/{pool}/identities/{id}`,
   * Server-Sent Events; not an AWS API). Resolves once the answer's headers arrived with status 200: read the body
   * until it ends; abort `signal` to close it. With `presignExpiresInSeconds`, the signature travels in the URL.
   */
  async openLiveStream(identityPoolId: string, identityId: string, options: { signal?: AbortSignal; presignExpiresInSeconds?: number } = {}): Promise<Response> {
    const presign = options.presignExpiresInSeconds !== undefined;
    const request: AwsRequest = {
      method: 'GET',
      path: `/live/identitypools/${encodeLabel(identityPoolId)}/identities/${encodeLabel(identityId)}`,
      // A pre-signed GET carries no header of its own: a "simple" request, without a CORS preflight.
      headers: presign ? {} : { accept: 'text/event-stream' },
      endpoint: this.config.endpoint,
      region: this.config.region,
      service: 'cognito-sync',
      credentials: await this.config.credentials(),
      fetch: this.config.fetch,
      signal: options.signal,
    };
    // A signature refused for the device's clock is signed again once with the service's (see sendAwsRequest).
    for (let attempt = 0; ; attempt++) {
      const prepared = await prepareAwsRequest(request, options.presignExpiresInSeconds);
      const response = await fetchOrNetworkError(request, prepared);
      if (response.ok && response.body) return response;
      const error = serviceErrorOf(response, await response.text().catch(() => ''));
      if (attempt > 0 || !learnedClockSkew(request, error, response.headers.get('date'))) throw error;
    }
  }
}

/**
 * cognisync's refusal of a NextToken issued before the dataset was deleted, or before removals the listing had still
 * to return were dropped (see pullChanges).
 */
const isListingToStartOver = (error: unknown) =>
  error instanceof ServiceError && error.name === 'InvalidParameterException' && /since this NextToken was issued: list its records again from the start/.test(error.message);
