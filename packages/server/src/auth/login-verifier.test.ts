import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { LoginVerifier } from './login-verifier.js';
import type { OpenIdTokens } from './openid-tokens.js';
import type { IdentityPoolRecord } from '../store/store.js';

test('an OpenID issuer whose discovery fails is asked once by concurrent logins, and not again at once', async () => {
  let asked = 0;
  const issuer = createServer((_req, res) => {
    asked++;
    setTimeout(() => res.writeHead(503).end(), 50);
  });
  await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
  try {
    const providerName = `127.0.0.1:${(issuer.address() as AddressInfo).port}`;
    const pool = { identityPoolId: 'us-east-1:pool', description: { OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${providerName}`] } } as unknown as IdentityPoolRecord;
    const verifier = new LoginVerifier({} as OpenIdTokens);
    const attempts = await Promise.allSettled(Array.from({ length: 10 }, () => verifier.verify(pool, { [providerName]: 'a.b.c' })));
    for (const attempt of attempts) {
      assert.equal(attempt.status, 'rejected');
      assert.equal((attempt as PromiseRejectedResult).reason.name, 'NotAuthorizedException');
      assert.match((attempt as PromiseRejectedResult).reason.message, /answered 503/);
    }
    await assert.rejects(verifier.verify(pool, { [providerName]: 'a.b.c' }), { name: 'NotAuthorizedException' });
    assert.equal(asked, 1);
  } finally {
    await new Promise<void>((resolve) => issuer.close(() => resolve()));
  }
});
