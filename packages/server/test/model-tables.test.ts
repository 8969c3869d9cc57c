// The committed model tables (src/model/*.generated.ts) against the botocore models they come from, and
// the binding of every Cognito Sync operation to exactly one handler.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { cognitoIdentityErrors, cognitoIdentityMetadata, cognitoIdentityOperations } from '../src/model/cognito-identity.generated.js';
import { cognitoSyncErrors, cognitoSyncMetadata, cognitoSyncOperations } from '../src/model/cognito-sync.generated.js';
import { identityOperations } from '../src/operations/identity/index.js';
import { syncOperations } from '../src/operations/sync/index.js';

const modelsDir = path.resolve(import.meta.dirname, '../../../../shared/reference/aws-models');

interface BotocoreShape {
  type: string;
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
  required?: string[];
  members?: Record<string, { shape: string; location?: string; locationName?: string }>;
  member?: { shape: string };
  key?: { shape: string };
  value?: { shape: string };
  exception?: boolean;
  fault?: boolean;
  error?: { httpStatusCode?: number };
}

interface BotocoreModel {
  metadata: Record<string, unknown>;
  operations: Record<string, { name: string; http: { method: string; requestUri: string }; authtype?: string; input?: { shape: string }; errors?: { shape: string }[] }>;
  shapes: Record<string, BotocoreShape>;
}

/** Shapes whose values validation messages leave out: login tokens and record values (ours; botocore has no mark). */
const SENSITIVE = ['IdentityProviderToken', 'OIDCToken', 'RecordValue'];

/**
 * What the tables must say, derived here independently of scripts/generate-model.mjs: every shape inlined
 * with its type and min/max/pattern/enum, structure members with required and wire location.
 */
function expectedShape(shapes: BotocoreModel['shapes'], name: string): Record<string, unknown> {
  const shape = shapes[name];
  assert.ok(shape, `shape ${name} exists`);
  const constraints: Record<string, unknown> = Object.fromEntries((['min', 'max', 'pattern', 'enum'] as const).filter((k) => shape[k] !== undefined).map((k) => [k, shape[k]]));
  if (SENSITIVE.includes(name)) constraints.sensitive = true;
  switch (shape.type) {
    case 'structure':
      return {
        type: 'structure',
        ...constraints,
        members: Object.fromEntries(
          Object.entries(shape.members ?? {}).map(([memberName, member]) => [
            memberName,
            {
              shape: expectedShape(shapes, member.shape),
              ...(shape.required?.includes(memberName) ? { required: true } : {}),
              ...(member.location ? { location: member.location } : {}),
              ...(member.locationName ? { locationName: member.locationName } : {}),
            },
          ]),
        ),
      };
    case 'list':
      return { type: 'list', ...constraints, member: expectedShape(shapes, shape.member!.shape) };
    case 'map':
      return { type: 'map', ...constraints, key: expectedShape(shapes, shape.key!.shape), value: expectedShape(shapes, shape.value!.shape) };
    default:
      return { type: shape.type, ...constraints };
  }
}

function expectedTables(model: BotocoreModel) {
  const operations = Object.fromEntries(
    Object.entries(model.operations).map(([name, op]) => [
      name,
      {
        name,
        http: { method: op.http.method, requestUri: op.http.requestUri },
        ...(op.authtype ? { authtype: op.authtype } : {}),
        input: op.input ? expectedShape(model.shapes, op.input.shape) : { type: 'structure', members: {} },
        errors: (op.errors ?? []).map((error) => error.shape),
      },
    ]),
  );
  const errors = Object.fromEntries(
    Object.entries(model.shapes)
      .filter(([, shape]) => shape.exception)
      .map(([name, shape]) => [name, { status: shape.error?.httpStatusCode ?? (shape.fault ? 500 : 400), fault: shape.fault ? 'server' : 'client' }]),
  );
  return { operations, errors };
}

/** The generated constants are `as const` objects; compare them as plain JSON. */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

describe('model tables', () => {
  const services = [
    { file: 'cognito-sync-2014-06-30.json', metadata: cognitoSyncMetadata, operations: cognitoSyncOperations, errors: cognitoSyncErrors },
    { file: 'cognito-identity-2014-06-30.json', metadata: cognitoIdentityMetadata, operations: cognitoIdentityOperations, errors: cognitoIdentityErrors },
  ];
  for (const service of services) {
    test(`${service.file}: the committed tables match the botocore model`, (t) => {
      if (!existsSync(modelsDir)) {
        t.skip('reference models not present');
        return;
      }
      const model = JSON.parse(readFileSync(path.join(modelsDir, service.file), 'utf8')) as BotocoreModel;
      const expected = expectedTables(model);
      assert.deepEqual(plain(service.metadata), model.metadata);
      assert.deepEqual(Object.keys(service.operations).sort(), Object.keys(expected.operations).sort());
      for (const [name, operation] of Object.entries(expected.operations)) {
        assert.deepEqual(plain((service.operations as Record<string, unknown>)[name]), operation, `operation ${name}`);
      }
      assert.deepEqual(plain(service.errors), expected.errors);
    });
  }

  // Facts any reader can check against the AWS documentation; they hold whether or not the reference models are here.
  test('spot checks: bindings, locations, constraints and error statuses', () => {
    assert.equal(Object.keys(cognitoSyncOperations).length, 17);
    const update = cognitoSyncOperations.UpdateRecords;
    assert.deepEqual(update.http, { method: 'POST', requestUri: '/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}' });
    assert.equal(update.input.members.IdentityId.location, 'uri');
    assert.equal(update.input.members.IdentityId.required, true);
    assert.equal(update.input.members.IdentityId.shape.pattern, '[\\w-]+:[0-9a-f-]+');
    assert.equal(update.input.members.ClientContext.location, 'header');
    assert.equal(update.input.members.ClientContext.locationName, 'x-amz-Client-Context');
    assert.deepEqual(update.input.members.RecordPatches.shape.member.members.Op.shape.enum, ['replace', 'remove']);
    assert.equal(update.input.members.RecordPatches.shape.member.members.Value.shape.max, 1048575);
    assert.deepEqual(cognitoSyncOperations.ListRecords.input.members.LastSyncCount, { shape: { type: 'long' }, location: 'querystring', locationName: 'lastSyncCount' });
    assert.equal(cognitoSyncOperations.SetCognitoEvents.input.members.Events.shape.max, 1);
    assert.equal(cognitoSyncErrors.ResourceConflictException.status, 409);
    assert.equal(cognitoSyncErrors.NotAuthorizedException.status, 403);
    assert.equal(cognitoSyncErrors.ResourceNotFoundException.status, 404);
    assert.equal(cognitoSyncErrors.TooManyRequestsException.status, 429);
    assert.equal(cognitoSyncErrors.InternalErrorException.status, 500);
    assert.deepEqual(cognitoIdentityOperations.CreateIdentityPool.http, { method: 'POST', requestUri: '/' });
    assert.equal(cognitoIdentityOperations.ListIdentityPools.input.members.MaxResults.shape.max, 60);
    assert.equal(cognitoIdentityErrors.ResourceConflictException.status, 400);
    assert.equal(cognitoIdentityErrors.InternalErrorException.status, 500);
  });
});

describe('operation bindings', () => {
  test('all 17 Cognito Sync operations are bound, each model name exactly once, to its own model entry', () => {
    const names = syncOperations.map((operation) => operation.model.name);
    assert.equal(new Set(names).size, names.length, `duplicates in ${names.join(', ')}`);
    assert.deepEqual([...names].sort(), Object.keys(cognitoSyncOperations).sort());
    assert.equal(names.length, 17);
    for (const operation of syncOperations) {
      assert.equal(operation.service, 'sync', operation.model.name);
      assert.ok(operation.callers.length > 0, `${operation.model.name} names who may call it`);
      const generated = (cognitoSyncOperations as Record<string, any>)[operation.model.name];
      if (operation.model.name !== 'RegisterDevice') {
        assert.equal(operation.model, generated, `${operation.model.name} uses the generated model entry`);
        continue;
      }
      // The one documented extension: RegisterDevice also accepts Platform WEB_PUSH; everything else is the model's.
      const { Platform, ...members } = (operation.model.input as any).members;
      const { Platform: modelPlatform, ...modelMembers } = generated.input.members;
      assert.deepEqual(members, modelMembers);
      assert.deepEqual({ ...operation.model, input: undefined }, { ...generated, input: undefined });
      assert.deepEqual(Platform.shape.enum, [...modelPlatform.shape.enum, 'WEB_PUSH']);
      assert.equal(Platform.required, modelPlatform.required);
    }
  });

  test('every bound Cognito Identity operation is a model operation, bound once', () => {
    const names = identityOperations.map((operation) => operation.model.name);
    assert.equal(new Set(names).size, names.length, `duplicates in ${names.join(', ')}`);
    for (const operation of identityOperations) {
      assert.equal(operation.service, 'identity', operation.model.name);
      assert.equal(operation.model, (cognitoIdentityOperations as Record<string, unknown>)[operation.model.name], operation.model.name);
    }
  });
});
