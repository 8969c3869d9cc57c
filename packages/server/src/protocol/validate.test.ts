// Model-driven validation against the real Cognito operation shapes: typed values out, AWS's
// "N validation errors detected" InvalidParameterException for every violation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cognitoIdentityOperations } from '../model/cognito-identity.generated.js';
import { cognitoSyncOperations } from '../model/cognito-sync.generated.js';
import type { StructureShape } from '../model/shapes.js';
import { parseTimestamp, validateInput } from './validate.js';

const POOL = 'us-east-1:0a1b2c3d-0000-4000-8000-000000000001';
const IDENTITY = 'us-east-1:11111111-aaaa-4bbb-8ccc-dddddddddddd';
const ID_PATTERN = '[\\w-]+:[0-9a-f-]+';

const sync = cognitoSyncOperations;
const identity = cognitoIdentityOperations;

interface Case {
  title: string;
  shape: StructureShape;
  input: Record<string, unknown>;
  /** Each violation's text after "N validation error(s) detected: ", in any order. */
  errors: string[];
}

const fails = (value: string, path: string, constraint: string) => `Value '${value}' at '${path}' failed to satisfy constraint: ${constraint}`;
const missing = (path: string) => `Value null at '${path}' failed to satisfy constraint: Member must not be null`;

/** Asserts that validation fails with exactly these violations and AWS's count wording. */
function assertViolations(shape: StructureShape, input: Record<string, unknown>, errors: string[]) {
  assert.throws(
    () => validateInput(shape, input),
    (error: Error & { code?: string }) => {
      assert.equal(error.name, 'InvalidParameterException');
      assert.equal(error.code, 'InvalidParameterException');
      const count = errors.length;
      const prefix = `${count} validation error${count === 1 ? '' : 's'} detected: `;
      assert.ok(error.message.startsWith(prefix), `message ${JSON.stringify(error.message)} should start with ${JSON.stringify(prefix)}`);
      if (count === 1) assert.equal(error.message, prefix + errors[0]);
      else assert.deepEqual(error.message.slice(prefix.length).split('; ').sort(), [...errors].sort());
      return true;
    },
  );
}

const updateRecords = (overrides: Record<string, unknown> = {}) => ({
  IdentityPoolId: POOL,
  IdentityId: IDENTITY,
  DatasetName: 'settings',
  SyncSessionToken: 'token',
  RecordPatches: [{ Op: 'replace', Key: 'a', Value: 'b', SyncCount: 0 }],
  ...overrides,
});

describe('validateInput: valid inputs', () => {
  test('UpdateRecords passes and comes back typed, with timestamps as Dates', () => {
    const input = updateRecords({
      DeviceId: 'device-1',
      ClientContext: 'e30=',
      RecordPatches: [
        { Op: 'replace', Key: 'a', Value: '', SyncCount: 0, DeviceLastModifiedDate: 1_700_000_000.123 },
        { Op: 'remove', Key: 'b', SyncCount: 42, DeviceLastModifiedDate: 1_700_000_001 },
        { Op: 'replace', Key: 'c', Value: 'ünïcødé', SyncCount: 7, DeviceLastModifiedDate: '1700000002.5' },
      ],
    });
    assert.deepEqual(validateInput(sync.UpdateRecords.input, input), {
      ...input,
      RecordPatches: [
        { Op: 'replace', Key: 'a', Value: '', SyncCount: 0, DeviceLastModifiedDate: new Date(1_700_000_000_123) },
        { Op: 'remove', Key: 'b', SyncCount: 42, DeviceLastModifiedDate: new Date(1_700_000_001_000) },
        { Op: 'replace', Key: 'c', Value: 'ünïcødé', SyncCount: 7, DeviceLastModifiedDate: new Date(1_700_000_002_500) },
      ],
    });
  });

  test('members the model does not know are dropped; absent optional members stay absent', () => {
    const out = validateInput<Record<string, unknown>>(sync.ListRecords.input, { IdentityPoolId: POOL, IdentityId: IDENTITY, DatasetName: 'd', Surprise: 1, MaxResults: null });
    assert.deepEqual(out, { IdentityPoolId: POOL, IdentityId: IDENTITY, DatasetName: 'd' });
  });

  test('ListRecords, RegisterDevice, SetIdentityPoolConfiguration, SetCognitoEvents, CreateIdentityPool and ListIdentityPools accept valid inputs unchanged', () => {
    const inputs: [StructureShape, Record<string, unknown>][] = [
      [sync.ListRecords.input, { IdentityPoolId: POOL, IdentityId: IDENTITY, DatasetName: 'a_b.c:d-e', LastSyncCount: 0, NextToken: 'x', MaxResults: 1024, SyncSessionToken: 't' }],
      [sync.RegisterDevice.input, { IdentityPoolId: POOL, IdentityId: IDENTITY, Platform: 'APNS_SANDBOX', Token: 'push-token' }],
      [
        sync.SetIdentityPoolConfiguration.input,
        {
          IdentityPoolId: POOL,
          PushSync: { ApplicationArns: ['arn:aws:sns:us-east-1:123456789012:app/GCM/my-app'], RoleArn: 'arn:aws:iam::123456789012:role/push' },
          CognitoStreams: { StreamName: 's', RoleArn: 'arn:aws:iam::123456789012:role/streams', StreamingStatus: 'DISABLED' },
        },
      ],
      [sync.SetCognitoEvents.input, { IdentityPoolId: POOL, Events: { SyncTrigger: 'arn:aws:lambda:us-east-1:123456789012:function:f' } }],
      [sync.SetCognitoEvents.input, { IdentityPoolId: POOL, Events: {} }],
      [
        identity.CreateIdentityPool.input,
        {
          IdentityPoolName: 'My pool, v2 @home',
          AllowUnauthenticatedIdentities: false,
          SupportedLoginProviders: { 'graph.facebook.com': '1234567890' },
          DeveloperProviderName: 'login.example.app',
          CognitoIdentityProviders: [{ ProviderName: 'cognito-idp.us-east-1.amazonaws.com/us-east-1_abc', ClientId: 'client_1', ServerSideTokenCheck: true }],
          IdentityPoolTags: { team: '' },
        },
      ],
      [identity.ListIdentityPools.input, { MaxResults: 60, NextToken: 'abc' }],
      [identity.ListIdentityPools.input, { MaxResults: 1 }],
    ];
    for (const [shape, input] of inputs) assert.deepEqual(validateInput(shape, input), input);
  });
});

describe('validateInput: violations', () => {
  const cases: Case[] = [
    {
      title: 'pattern on a path label (AWS wording, pattern as in the model)',
      shape: sync.ListRecords.input,
      input: { IdentityPoolId: 'x', IdentityId: IDENTITY, DatasetName: 'd' },
      errors: [fails('x', 'identityPoolId', 'Member must satisfy regular expression pattern: [\\w-]+:[0-9a-f-]+')],
    },
    {
      title: 'an identity id in upper-case hex (the pattern is lower-case only)',
      shape: sync.ListRecords.input,
      input: { IdentityPoolId: POOL, IdentityId: IDENTITY.toUpperCase(), DatasetName: 'd' },
      errors: [fails(IDENTITY.toUpperCase(), 'identityId', `Member must satisfy regular expression pattern: ${ID_PATTERN}`)],
    },
    {
      title: 'the pattern must match the whole value',
      shape: sync.ListRecords.input,
      input: { IdentityPoolId: POOL, IdentityId: IDENTITY, DatasetName: 'ok/../not-ok' },
      errors: [fails('ok/../not-ok', 'datasetName', 'Member must satisfy regular expression pattern: [a-zA-Z0-9_.:-]+')],
    },
    {
      title: 'max length of a string',
      shape: sync.ListRecords.input,
      input: { IdentityPoolId: POOL, IdentityId: IDENTITY, DatasetName: 'd'.repeat(129) },
      errors: [fails('d'.repeat(128) + '...', 'datasetName', 'Member must have length less than or equal to 128')],
    },
    {
      title: 'missing required members, top level',
      shape: sync.UpdateRecords.input,
      input: { IdentityPoolId: POOL, IdentityId: IDENTITY, DatasetName: 'settings' },
      errors: [missing('syncSessionToken')],
    },
    {
      title: 'enum, with the value set in model order',
      shape: sync.RegisterDevice.input,
      input: { IdentityPoolId: POOL, IdentityId: IDENTITY, Platform: 'WNS', Token: 't' },
      errors: [fails('WNS', 'platform', 'Member must satisfy enum value set: [APNS, APNS_SANDBOX, GCM, ADM]')],
    },
    {
      title: 'nested list members are named recordPatches.N.member (1-based)',
      shape: sync.UpdateRecords.input,
      input: updateRecords({
        RecordPatches: [
          { Op: 'replace', Key: 'fine', Value: 'v', SyncCount: 0 },
          { Op: 'replace', Key: '', Value: 'v', SyncCount: 0 },
        ],
      }),
      errors: [fails('', 'recordPatches.2.member.key', 'Member must have length greater than or equal to 1')],
    },
    {
      title: 'enum and required inside a list member',
      shape: sync.UpdateRecords.input,
      input: updateRecords({ RecordPatches: [{ Op: 'upsert', Key: 'k', Value: 'v' }] }),
      errors: [fails('upsert', 'recordPatches.1.member.op', 'Member must satisfy enum value set: [replace, remove]'), missing('recordPatches.1.member.syncCount')],
    },
    {
      title: 'key longer than 1024 characters',
      shape: sync.UpdateRecords.input,
      input: updateRecords({ RecordPatches: [{ Op: 'remove', Key: 'k'.repeat(1025), SyncCount: 1 }] }),
      errors: [fails('k'.repeat(128) + '...', 'recordPatches.1.member.key', 'Member must have length less than or equal to 1024')],
    },
    {
      title: 'map size (Events takes at most one binding)',
      shape: sync.SetCognitoEvents.input,
      input: { IdentityPoolId: POOL, Events: { SyncTrigger: 'a', Other: 'b' } },
      // cognisync renders a map value as JSON; AWS's exact rendering of a map is not known.
      errors: [fails('{"SyncTrigger":"a","Other":"b"}', 'events', 'Member must have length less than or equal to 1')],
    },
    {
      title: 'missing required map',
      shape: sync.SetCognitoEvents.input,
      input: { IdentityPoolId: POOL },
      errors: [missing('events')],
    },
    {
      title: 'nested structure members: enum, min length and list-member pattern',
      shape: sync.SetIdentityPoolConfiguration.input,
      input: {
        IdentityPoolId: POOL,
        PushSync: { ApplicationArns: ['arn:aws:sns:us-east-1:123456789012:app/GCM/ok', 'not-an-arn'], RoleArn: 'arn:aws:iam::1:role' },
        CognitoStreams: { StreamingStatus: 'PAUSED' },
      },
      errors: [
        fails('not-an-arn', 'pushSync.applicationArns.2.member', 'Member must satisfy regular expression pattern: arn:aws:sns:[-0-9a-z]+:\\d+:app/[A-Z_]+/[a-zA-Z0-9_.-]+'),
        fails('arn:aws:iam::1:role', 'pushSync.roleArn', 'Member must have length greater than or equal to 20'),
        fails('arn:aws:iam::1:role', 'pushSync.roleArn', 'Member must satisfy regular expression pattern: arn:aws:iam::\\d+:role/.*'),
        fails('PAUSED', 'cognitoStreams.streamingStatus', 'Member must satisfy enum value set: [ENABLED, DISABLED]'),
      ],
    },
    {
      title: 'Identity API: required members and the name pattern',
      shape: identity.CreateIdentityPool.input,
      input: { IdentityPoolName: 'bad/name' },
      errors: [fails('bad/name', 'identityPoolName', 'Member must satisfy regular expression pattern: [\\w\\s+=,.@-]+'), missing('allowUnauthenticatedIdentities')],
    },
    {
      title: 'Identity API: nested list member pattern and map size',
      shape: identity.CreateIdentityPool.input,
      input: {
        IdentityPoolName: 'pool',
        AllowUnauthenticatedIdentities: true,
        CognitoIdentityProviders: [{ ProviderName: 'p', ClientId: 'has-dash' }],
        SupportedLoginProviders: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`p${i}`, 'a'])),
      },
      errors: [
        fails(
          JSON.stringify(Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`p${i}`, 'a']))),
          'supportedLoginProviders',
          'Member must have length less than or equal to 10',
        ),
        fails('has-dash', 'cognitoIdentityProviders.1.member.clientId', 'Member must satisfy regular expression pattern: [\\w_]+'),
      ],
    },
    {
      title: 'Identity API: integer range, both ends',
      shape: identity.ListIdentityPools.input,
      input: { MaxResults: 61 },
      errors: [fails('61', 'maxResults', 'Member must have value less than or equal to 60')],
    },
    {
      title: 'Identity API: integer below min, and an empty NextToken',
      shape: identity.ListIdentityPools.input,
      input: { MaxResults: 0, NextToken: '' },
      errors: [
        fails('0', 'maxResults', 'Member must have value greater than or equal to 1'),
        fails('', 'nextToken', 'Member must have length greater than or equal to 1'),
        fails('', 'nextToken', 'Member must satisfy regular expression pattern: [\\S]+'),
      ],
    },
    {
      title: 'Identity API: missing required integer',
      shape: identity.ListIdentityPools.input,
      input: {},
      errors: [missing('maxResults')],
    },
    {
      title: 'several violations are all counted',
      shape: sync.ListRecords.input,
      input: { IdentityPoolId: 'x', IdentityId: 'US-EAST-1:ABC', DatasetName: 'fine' },
      errors: [
        fails('x', 'identityPoolId', `Member must satisfy regular expression pattern: ${ID_PATTERN}`),
        fails('US-EAST-1:ABC', 'identityId', `Member must satisfy regular expression pattern: ${ID_PATTERN}`),
      ],
    },
  ];

  for (const { title, shape, input, errors } of cases) {
    test(title, () => assertViolations(shape, input, errors));
  }
});

describe('validateInput: types', () => {
  test('a value of the wrong JSON type is a violation at its path, not a crash', () => {
    assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: '3' }] }), [
      fails('3', 'recordPatches.1.member.syncCount', 'Member must be of type long (a whole number)'),
    ]);
    assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 1.5 }] }), [
      fails('1.5', 'recordPatches.1.member.syncCount', 'Member must be of type long (a whole number)'),
    ]);
    assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 1e400 }] }), [
      fails('Infinity', 'recordPatches.1.member.syncCount', 'Member must be of type long (a whole number)'),
    ]);
    assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 2 ** 64 }] }), [
      fails(String(2 ** 64), 'recordPatches.1.member.syncCount', 'Member must be a 64-bit integer'),
    ]);
    assertViolations(identity.CreateIdentityPool.input, { IdentityPoolName: 'p', AllowUnauthenticatedIdentities: true, OpenIdConnectProviderARNs: { Arn: 'x' } }, [
      fails('{"Arn":"x"}', 'openIdConnectProviderARNs', 'Member must be of type list'),
    ]);
    // A long within 64 bits but past 2^53 is taken, as the nearest safe value (no count ever gets there).
    const far = validateInput<{ LastSyncCount: number }>(sync.ListRecords.input, { IdentityPoolId: POOL, IdentityId: IDENTITY, DatasetName: 'd', LastSyncCount: 9223372036854775807 });
    assert.equal(far.LastSyncCount, Number.MAX_SAFE_INTEGER);
    assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [null] }), [missing('recordPatches.1.member')]);
    assertViolations(sync.UpdateRecords.input, updateRecords({ SyncSessionToken: 5 }), [fails('5', 'syncSessionToken', 'Member must be of type string')]);
    assertViolations(identity.CreateIdentityPool.input, { IdentityPoolName: 'p', AllowUnauthenticatedIdentities: 'true' }, [
      fails('true', 'allowUnauthenticatedIdentities', 'Member must be of type boolean'),
    ]);
    assertViolations(sync.SetCognitoEvents.input, { IdentityPoolId: POOL, Events: ['SyncTrigger'] }, [fails('["SyncTrigger"]', 'events', 'Member must be of type map')]);
    assertViolations(identity.ListIdentityPools.input, { MaxResults: 2 ** 31 }, [
      fails(String(2 ** 31), 'maxResults', 'Member must be a 32-bit integer'),
      fails(String(2 ** 31), 'maxResults', 'Member must have value less than or equal to 60'),
    ]);
  });

  test('a million bad items give a short message: ten listed, the rest counted', () => {
    const error = (() => {
      try {
        validateInput(sync.UpdateRecords.input, updateRecords({ RecordPatches: new Array(1_000_000).fill(1) }));
      } catch (thrown) {
        return thrown as Error;
      }
      throw new Error('expected a violation');
    })();
    assert.equal(error.name, 'InvalidParameterException');
    assert.match(error.message, /^1000000 validation errors detected: /);
    assert.equal(error.message.match(/failed to satisfy constraint/g)!.length, 10);
    assert.match(error.message, /; and 999990 more$/);
    assert.ok(error.message.length < 2000);
  });

  test('a value nested too deeply to print is shown by its kind, not a crash', () => {
    const deep = JSON.parse('['.repeat(20_000) + ']'.repeat(20_000));
    assertViolations(sync.UpdateRecords.input, updateRecords({ SyncSessionToken: deep }), [fails('[...]', 'syncSessionToken', 'Member must be of type string')]);
  });

  test('a timestamp that is not epoch seconds is a violation', () => {
    for (const bad of ['yesterday', '2024-01-01T00:00:00Z', '', true, {}]) {
      assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'remove', Key: 'k', SyncCount: 1, DeviceLastModifiedDate: bad }] }), [
        fails(typeof bad === 'string' ? bad : JSON.stringify(bad), 'recordPatches.1.member.deviceLastModifiedDate', 'Member must be a timestamp in epoch seconds'),
      ]);
    }
  });

  test('a timestamp outside years 1-9999 by a day (which boto3 cannot read back in every time zone) is a violation; the first and last instants of that span pass', () => {
    const patch = (date: unknown) => updateRecords({ RecordPatches: [{ Op: 'remove', Key: 'k', SyncCount: 1, DeviceLastModifiedDate: date }] });
    // 9999-12-31T20:00Z is year 10000 in Tokyo; 0001-01-01T06:00Z is year 0 in Los Angeles.
    for (const bad of [253_402_300_800, 253_402_286_400, 253_402_214_400, -62_135_596_801, -62_135_575_200, -62_135_510_401, 8_640_000_000_000, -8_640_000_000_000]) {
      assertViolations(sync.UpdateRecords.input, patch(bad), [
        fails(String(bad), 'recordPatches.1.member.deviceLastModifiedDate', 'Member must be a timestamp from 0001-01-02T00:00:00Z to 9999-12-30T23:59:59.999Z'),
      ]);
    }
    for (const good of [253_402_214_399.999, -62_135_510_400, 0]) assert.doesNotThrow(() => validateInput(sync.UpdateRecords.input, patch(good)), String(good));
  });

  test('parseTimestamp reads epoch seconds as fractional number, integer or numeric string', () => {
    assert.deepEqual(parseTimestamp(1_700_000_000.5), new Date(1_700_000_000_500));
    assert.deepEqual(parseTimestamp(1_700_000_000), new Date(1_700_000_000_000));
    assert.deepEqual(parseTimestamp('1700000000'), new Date(1_700_000_000_000));
    assert.deepEqual(parseTimestamp('1700000000.001'), new Date(1_700_000_000_001));
    assert.deepEqual(parseTimestamp('1.7e9'), new Date(1_700_000_000_000));
    assert.deepEqual(parseTimestamp(0), new Date(0));
    assert.equal(parseTimestamp('12abc'), undefined);
    assert.equal(parseTimestamp(Number.NaN), undefined);
    assert.equal(parseTimestamp(Number.POSITIVE_INFINITY), undefined);
    assert.equal(parseTimestamp(1e20), undefined);
    assert.equal(parseTimestamp(null), undefined);
  });
});

describe('validateInput: patterns and echoed values as AWS (Java) reads them', () => {
  const NAME_PATTERN = 'Member must satisfy regular expression pattern: [\\w\\s+=,.@-]+';
  const TOKEN_PATTERN = 'Member must satisfy regular expression pattern: [\\S]+';

  test('\\s is ASCII whitespace only, as in Java: a no-break, ideographic or zero-width space is refused', () => {
    for (const name of ['a b', 'a\tb', 'a\nb', 'a\u000bb', 'a\fb', 'a\rb']) {
      assert.equal(validateInput<{ IdentityPoolName: string }>(identity.CreateIdentityPool.input, { IdentityPoolName: name, AllowUnauthenticatedIdentities: true }).IdentityPoolName, name);
    }
    for (const name of ['a\u00a0b', 'a\u3000b', 'a\ufeffb', 'a\u2028b', 'a\u2003b', 'a\u0085b', 'a\u1680b']) {
      assertViolations(identity.CreateIdentityPool.input, { IdentityPoolName: name, AllowUnauthenticatedIdentities: true }, [fails(name, 'identityPoolName', NAME_PATTERN)]);
    }
  });

  test('\\S (here inside a class) is everything but ASCII whitespace, as in Java: a no-break space is a non-space', () => {
    const listIdentities = (NextToken: string) => ({ IdentityPoolId: POOL, MaxResults: 10, NextToken });
    for (const token of ['abc\u00a0def', 'a\u3000b\ufeff', '😀', '\u0001\u007f\u001c']) {
      assert.equal(validateInput<{ NextToken: string }>(identity.ListIdentities.input, listIdentities(token)).NextToken, token);
    }
    for (const token of ['abc def', 'abc\u000bdef', '\t']) {
      assertViolations(identity.ListIdentities.input, listIdentities(token), [fails(token, 'nextToken', TOKEN_PATTERN)]);
    }
  });

  test('\\w and \\d are ASCII, as in Java: Kelvin sign, long s and Arabic-Indic digits are refused', () => {
    for (const name of ['\u212a', '\u017f', 'é']) {
      assertViolations(identity.CreateIdentityPool.input, { IdentityPoolName: name, AllowUnauthenticatedIdentities: true }, [fails(name, 'identityPoolName', NAME_PATTERN)]);
    }
    assertViolations(identity.GetId.input, { IdentityPoolId: POOL, AccountId: '\u0661\u0662' }, [fails('\u0661\u0662', 'accountId', 'Member must satisfy regular expression pattern: \\d+')]);
    assert.equal(validateInput<{ AccountId: string }>(identity.GetId.input, { IdentityPoolId: POOL, AccountId: '0123456789' }).AccountId, '0123456789');
  });

  test('a long echoed value is cut between code points, never inside a surrogate pair', () => {
    const key = 'a' + '😀'.repeat(600);
    // 128 UTF-16 units would end on the high half of the 64th emoji: 63 are shown.
    assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: key, Value: 'b', SyncCount: 0 }] }), [
      fails('a' + '😀'.repeat(63) + '...', 'recordPatches.1.member.key', 'Member must have length less than or equal to 1024'),
    ]);
    // A cut that falls between two pairs keeps all 64.
    const even = '😀'.repeat(600);
    assertViolations(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: even, Value: 'b', SyncCount: 0 }] }), [
      fails('😀'.repeat(64) + '...', 'recordPatches.1.member.key', 'Member must have length less than or equal to 1024'),
    ]);
  });

  test('record values and login tokens are left out of messages (AWS words a sensitive member as "Value at …")', () => {
    const secret = 'TOPSECRET-' + 'x'.repeat(1_048_576);
    assert.throws(() => validateInput(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: 'k', Value: secret, SyncCount: 0 }] })), {
      message: "1 validation error detected: Value at 'recordPatches.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 1048575",
    });
    const token = 'TOPSECRET-' + 'y'.repeat(50_001);
    assert.throws(() => validateInput(cognitoIdentityOperations.GetId.input, { IdentityPoolId: POOL, Logins: { 'login.example': token } }), (error: Error) => {
      assert.doesNotMatch(error.message, /TOPSECRET/);
      assert.match(error.message, /Value at 'logins\.login\.example\.value' failed to satisfy constraint: Member must have length less than or equal to 50000/);
      return true;
    });
    // A key is still shown: it names the record, as AWS shows it.
    assert.throws(() => validateInput(sync.UpdateRecords.input, updateRecords({ RecordPatches: [{ Op: 'replace', Key: '', Value: 'v', SyncCount: 0 }] })), { message: /Value '' at 'recordPatches\.1\.member\.key'/ });
  });

  test('a list, map or structure that fails as a whole is left out of the message when it may hold a record value or login token', () => {
    const logins = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`p${i}.example.com`, `TOPSECRET-${i}`]));
    for (const [shape, input, expected] of [
      [identity.GetId.input, { IdentityPoolId: POOL, Logins: logins }, "Value at 'logins' failed to satisfy constraint: Member must have length less than or equal to 10"],
      [identity.GetId.input, { IdentityPoolId: POOL, Logins: ['TOPSECRET'] }, "Value at 'logins' failed to satisfy constraint: Member must be of type map"],
      [sync.UpdateRecords.input, updateRecords({ RecordPatches: { Op: 'replace', Key: 'k', Value: 'TOPSECRET' } }), "Value at 'recordPatches' failed to satisfy constraint: Member must be of type list"],
      [sync.UpdateRecords.input, updateRecords({ RecordPatches: ['TOPSECRET'] }), "Value at 'recordPatches.1.member' failed to satisfy constraint: Member must be of type structure"],
    ] as const) {
      assert.throws(() => validateInput(shape, input), { message: `1 validation error detected: ${expected}` });
    }
    // A container of nothing sensitive is still shown.
    assert.throws(() => validateInput(sync.UpdateRecords.input, updateRecords({ RecordPatches: [], DeviceId: ['d'] })), { message: /Value '\["d"\]' at 'deviceId'/ });
  });
});
