// One sync scenario through three other real clients: the AWS CLI v2 (Debian's /usr/bin/aws), aws-sdk v2
// and boto3. Each creates a pool, reads and writes records, hits a conflict, and deletes the dataset.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import AWS from 'aws-sdk';
import { developerCredentials, newIdentityId, startServer, type ServerProcess } from '../support/server-process.ts';

// aws-sdk v2 prints an end-of-support notice on a timer after it loads; it is noise in the test output.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';

/** The AWS CLI v2 from Debian's `awscli` package (an unrelated CLI v1 may sit earlier on PATH). */
const awsCliPath = '/usr/bin/aws';
/** Every name satisfies the model's pattern and ':' must be percent-encoded in the path. */
const datasetName = 'my.data_set:1-x';

let server: ServerProcess;
before(async () => {
  server = await startServer();
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(new Error(`${file} did not run: ${error.message}\n${stderr}`));
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** The caller's environment without any AWS_* settings, plus the test's credentials and no config files. */
function clientEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AWS_')) env[name] = value;
  return {
    ...env,
    AWS_ACCESS_KEY_ID: developerCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: developerCredentials.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_PAGER: '',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
}

const byKey = <T extends { Key?: string }>(records: T[]) => [...records].sort((a, b) => (a.Key! < b.Key! ? -1 : a.Key! > b.Key! ? 1 : 0));

describe('AWS CLI v2', () => {
  function aws(...args: string[]) {
    return run(awsCliPath, [...args, '--endpoint-url', server.endpoint, '--output', 'json'], clientEnvironment());
  }
  async function awsJson(...args: string[]): Promise<any> {
    const result = await aws(...args);
    assert.equal(result.code, 0, `aws ${args.slice(0, 2).join(' ')} failed: ${result.stderr}`);
    return JSON.parse(result.stdout);
  }

  test('creates a pool, syncs records, reports a conflict and deletes the dataset', async (t) => {
    if (!existsSync(awsCliPath)) {
      t.skip(`${awsCliPath} is missing (Debian package awscli; .ci/run installs it)`);
      return;
    }
    const pool = await awsJson('cognito-identity', 'create-identity-pool', '--identity-pool-name', 'cli pool', '--allow-unauthenticated-identities');
    assert.match(pool.IdentityPoolId, /^us-east-1:[0-9a-f-]{36}$/);
    assert.equal(pool.IdentityPoolName, 'cli pool');
    assert.equal(pool.AllowUnauthenticatedIdentities, true);

    const identityId = newIdentityId();
    const key = ['--identity-pool-id', pool.IdentityPoolId, '--identity-id', identityId, '--dataset-name', datasetName];

    const empty = await awsJson('cognito-sync', 'list-records', ...key);
    assert.equal(empty.DatasetExists, false);
    assert.deepEqual(empty.Records, []);
    assert.equal(empty.DatasetSyncCount, 0);
    assert.equal(typeof empty.SyncSessionToken, 'string');

    // The CLI sends timestamps as whole epoch seconds, so the device date is a whole second.
    const updated = await awsJson('cognito-sync', 'update-records', ...key, '--sync-session-token', empty.SyncSessionToken, '--record-patches',
      'Op=replace,Key=theme,Value=dark,SyncCount=0,DeviceLastModifiedDate=2023-11-14T22:13:20Z', 'Op=replace,Key=lang,Value=fr,SyncCount=0');
    assert.deepEqual(byKey(updated.Records).map((r: any) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'dark', 1]]);
    assert.equal(updated.Records.find((r: any) => r.Key === 'theme').DeviceLastModifiedDate, '2023-11-14T22:13:20+00:00');

    const listed = await awsJson('cognito-sync', 'list-records', ...key);
    assert.equal(listed.DatasetExists, true);
    assert.equal(listed.DatasetSyncCount, 1);
    assert.equal(listed.Count, 2);
    assert.equal(listed.LastModifiedBy, developerCredentials.accessKeyId);
    assert.deepEqual(byKey(listed.Records).map((r: any) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'dark', 1]]);

    const stale = await aws('cognito-sync', 'update-records', ...key, '--sync-session-token', listed.SyncSessionToken, '--record-patches', 'Op=replace,Key=theme,Value=light,SyncCount=0');
    assert.notEqual(stale.code, 0);
    assert.match(stale.stderr, /\(ResourceConflictException\) when calling the UpdateRecords operation: .*theme/);
    const afterConflict = await awsJson('cognito-sync', 'list-records', ...key);
    assert.equal(afterConflict.DatasetSyncCount, 1);
    assert.equal(afterConflict.Records.find((r: any) => r.Key === 'theme').Value, 'dark');

    const described = await awsJson('cognito-sync', 'describe-dataset', ...key);
    assert.equal(described.Dataset.IdentityId, identityId);
    assert.equal(described.Dataset.DatasetName, datasetName);
    assert.equal(described.Dataset.NumRecords, 2);
    assert.equal(described.Dataset.DataStorage, 'theme'.length + 'dark'.length + 'lang'.length + 'fr'.length);

    const deleted = await awsJson('cognito-sync', 'delete-dataset', ...key);
    assert.equal(deleted.Dataset.DatasetName, datasetName);

    const gone = await aws('cognito-sync', 'describe-dataset', ...key);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /\(ResourceNotFoundException\) when calling the DescribeDataset operation/);

    // A device that last synced at count 1 learns that the dataset was deleted since.
    const afterDelete = await awsJson('cognito-sync', 'list-records', ...key, '--last-sync-count', '1');
    assert.equal(afterDelete.DatasetExists, false);
    assert.equal(afterDelete.DatasetDeletedAfterRequestedSyncCount, true);
    assert.deepEqual(afterDelete.Records, []);
  });

  test('a model constraint violation reaches the CLI as InvalidParameterException with its message', async (t) => {
    if (!existsSync(awsCliPath)) {
      t.skip(`${awsCliPath} is missing (Debian package awscli; .ci/run installs it)`);
      return;
    }
    const pool = await awsJson('cognito-identity', 'create-identity-pool', '--identity-pool-name', 'cli-invalid', '--no-allow-unauthenticated-identities');
    const result = await aws('cognito-sync', 'list-records', '--identity-pool-id', pool.IdentityPoolId, '--identity-id', newIdentityId(), '--dataset-name', 'bad name!');
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /\(InvalidParameterException\) when calling the ListRecords operation: 1 validation error detected: Value 'bad name!' at 'datasetName'/);
  });
});

describe('aws-sdk v2', () => {
  const options = () => ({ endpoint: server.endpoint, region: 'us-east-1', credentials: developerCredentials, maxRetries: 0 });

  async function failure(request: Promise<unknown>): Promise<AWS.AWSError> {
    try {
      await request;
    } catch (error) {
      return error as AWS.AWSError;
    }
    throw new Error('expected the call to fail, but it succeeded');
  }

  test('creates a pool, syncs records, reports a conflict and deletes the dataset', async () => {
    const sync = new AWS.CognitoSync(options());
    const identity = new AWS.CognitoIdentity(options());
    const pool = await identity.createIdentityPool({ IdentityPoolName: 'v2 pool', AllowUnauthenticatedIdentities: false }).promise();
    assert.match(pool.IdentityPoolId, /^us-east-1:[0-9a-f-]{36}$/);
    assert.equal(pool.AllowUnauthenticatedIdentities, false);
    const key = { IdentityPoolId: pool.IdentityPoolId, IdentityId: newIdentityId(), DatasetName: datasetName };

    const empty = await sync.listRecords(key).promise();
    assert.equal(empty.DatasetExists, false);
    assert.deepEqual(empty.Records, []);

    const updated = await sync.updateRecords({
      ...key,
      SyncSessionToken: empty.SyncSessionToken!,
      RecordPatches: [
        { Op: 'replace', Key: 'theme', Value: 'dark', SyncCount: 0, DeviceLastModifiedDate: new Date(1700000000123) },
        { Op: 'replace', Key: 'lang', Value: 'fr', SyncCount: 0 },
      ],
    }).promise();
    assert.deepEqual(byKey(updated.Records!).map((r) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'dark', 1]]);
    assert.equal(updated.Records!.find((r) => r.Key === 'theme')!.DeviceLastModifiedDate!.getTime(), 1700000000123);

    const listed = await sync.listRecords(key).promise();
    assert.equal(listed.DatasetExists, true);
    assert.equal(listed.DatasetSyncCount, 1);
    assert.deepEqual(byKey(listed.Records!).map((r) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'dark', 1]]);

    const conflict = await failure(
      sync.updateRecords({ ...key, SyncSessionToken: listed.SyncSessionToken!, RecordPatches: [{ Op: 'replace', Key: 'theme', Value: 'light', SyncCount: 0 }] }).promise(),
    );
    assert.equal(conflict.code, 'ResourceConflictException');
    assert.equal(conflict.statusCode, 409);
    assert.match(conflict.message, /theme/);

    const described = await sync.describeDataset(key).promise();
    assert.equal(described.Dataset!.DatasetName, datasetName);
    assert.equal(described.Dataset!.NumRecords, 2);
    assert.ok(described.Dataset!.CreationDate instanceof Date);

    const deleted = await sync.deleteDataset(key).promise();
    assert.equal(deleted.Dataset!.DatasetName, datasetName);

    const gone = await failure(sync.describeDataset(key).promise());
    assert.equal(gone.code, 'ResourceNotFoundException');
    assert.equal(gone.statusCode, 404);
    assert.match(gone.message, /my\.data_set:1-x/);
  });

  test('POST operations without body members accept the v2 client\'s `{}` body', async () => {
    const sync = new AWS.CognitoSync(options());
    const identity = new AWS.CognitoIdentity(options());
    const { IdentityPoolId } = await identity.createIdentityPool({ IdentityPoolName: 'v2-empty-bodies', AllowUnauthenticatedIdentities: true }).promise();

    const details = await sync.getBulkPublishDetails({ IdentityPoolId }).promise();
    assert.equal(details.IdentityPoolId, IdentityPoolId);
    assert.equal(details.BulkPublishStatus, 'NOT_STARTED');

    // SubscribeToDataset is for identity credentials only; the developer's `{}`-bodied call is refused as on AWS.
    const developerCall = await failure(
      sync.subscribeToDataset({ IdentityPoolId, IdentityId: newIdentityId(), DatasetName: datasetName, DeviceId: 'no-such-device' }).promise(),
    );
    assert.equal(developerCall.code, 'NotAuthorizedException');
    assert.equal(developerCall.statusCode, 403);
  });

  test('Cognito Identity errors keep their model status (400) through the v2 JSON protocol', async () => {
    const identity = new AWS.CognitoIdentity(options());
    const { IdentityPoolId } = await identity.createIdentityPool({ IdentityPoolName: 'v2-delete', AllowUnauthenticatedIdentities: true }).promise();
    await identity.deleteIdentityPool({ IdentityPoolId }).promise();
    const error = await failure(identity.describeIdentityPool({ IdentityPoolId }).promise());
    assert.equal(error.code, 'ResourceNotFoundException');
    assert.equal(error.statusCode, 400);
  });
});

describe('boto3', () => {
  // Reads the endpoint from argv and credentials from the environment; prints one JSON document.
  const script = String.raw`
import datetime, json, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, identity_id, dataset_name = sys.argv[1:4]
config = Config(retries={'total_max_attempts': 1})
identity = boto3.client('cognito-identity', endpoint_url=endpoint, region_name='us-east-1', config=config)
sync = boto3.client('cognito-sync', endpoint_url=endpoint, region_name='us-east-1', config=config)

def plain(response):
    response.pop('ResponseMetadata', None)
    return response

def failure(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return {'code': error.response['Error']['Code'], 'status': error.response['ResponseMetadata']['HTTPStatusCode'], 'message': error.response['Error']['Message']}
    return None

out = {'boto3': boto3.__version__}
out['pool'] = plain(identity.create_identity_pool(IdentityPoolName='boto3 pool', AllowUnauthenticatedIdentities=True))
key = dict(IdentityPoolId=out['pool']['IdentityPoolId'], IdentityId=identity_id, DatasetName=dataset_name)
out['empty'] = plain(sync.list_records(**key))
out['updated'] = plain(sync.update_records(SyncSessionToken=out['empty']['SyncSessionToken'], RecordPatches=[
    {'Op': 'replace', 'Key': 'theme', 'Value': 'dark', 'SyncCount': 0,
     'DeviceLastModifiedDate': datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)},
    {'Op': 'replace', 'Key': 'lang', 'Value': 'fr', 'SyncCount': 0},
], **key))
out['listed'] = plain(sync.list_records(**key))
out['conflict'] = failure(sync.update_records, SyncSessionToken=out['listed']['SyncSessionToken'],
    RecordPatches=[{'Op': 'replace', 'Key': 'theme', 'Value': 'light', 'SyncCount': 0}], **key)
out['described'] = plain(sync.describe_dataset(**key))
out['deleted'] = plain(sync.delete_dataset(**key))
out['gone'] = failure(sync.describe_dataset, **key)
print(json.dumps(out, default=lambda value: value.isoformat()))
`;

  /** Debian's python3 (python3-boto3) first, then whatever python3 is on PATH. */
  async function pythonWithBoto3(): Promise<string | undefined> {
    for (const candidate of ['/usr/bin/python3', 'python3']) {
      try {
        if ((await run(candidate, ['-c', 'import boto3'], clientEnvironment())).code === 0) return candidate;
      } catch {
        // not installed: try the next one
      }
    }
    return undefined;
  }

  test('creates a pool, syncs records, reports a conflict and deletes the dataset', async (t) => {
    const python = await pythonWithBoto3();
    if (!python) {
      t.skip('no python3 with boto3 (Debian package python3-boto3; .ci/run installs it)');
      return;
    }
    const identityId = newIdentityId();
    const result = await run(python, ['-c', script, server.endpoint, identityId, datasetName], clientEnvironment());
    assert.equal(result.code, 0, `boto3 script failed:\n${result.stderr}`);
    const out = JSON.parse(result.stdout);
    t.diagnostic(`${python}: boto3 ${out.boto3}`);

    assert.match(out.pool.IdentityPoolId, /^us-east-1:[0-9a-f-]{36}$/);
    assert.equal(out.pool.IdentityPoolName, 'boto3 pool');
    assert.equal(out.empty.DatasetExists, false);
    assert.deepEqual(out.empty.Records, []);
    assert.deepEqual(byKey(out.updated.Records).map((r: any) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'dark', 1]]);
    assert.equal(out.updated.Records.find((r: any) => r.Key === 'theme').DeviceLastModifiedDate, '2023-11-14T22:13:20+00:00');
    assert.equal(out.listed.DatasetExists, true);
    assert.equal(out.listed.DatasetSyncCount, 1);
    assert.deepEqual(byKey(out.listed.Records).map((r: any) => [r.Key, r.Value, r.SyncCount]), [['lang', 'fr', 1], ['theme', 'dark', 1]]);
    assert.equal(out.conflict?.code, 'ResourceConflictException');
    assert.equal(out.conflict.status, 409);
    assert.match(out.conflict.message, /theme/);
    assert.equal(out.described.Dataset.IdentityId, identityId);
    assert.equal(out.described.Dataset.NumRecords, 2);
    assert.equal(out.deleted.Dataset.DatasetName, datasetName);
    assert.equal(out.gone?.code, 'ResourceNotFoundException');
    assert.equal(out.gone.status, 404);
  });
});
