// Temporary credentials bound to one identity, as GetCredentialsForIdentity issues them. Only the access
// key id, owner and expiry are stored; the secret key and session token are HMACs of the access key id
// under the master key, recomputed on every request.
import { createHmac, randomBytes } from 'node:crypto';

export interface IssuedCredentials {
  accessKeyId: string;
  secretKey: string;
  sessionToken: string;
  expiration: number;
}

export class CredentialDeriver {
  constructor(private readonly masterKey: Buffer) {}

  /** A new access key id with its derived secret and token (the caller stores id, owner and expiry). */
  issue(now: number, ttlSeconds: number): IssuedCredentials {
    // ASIA + 16 characters, like AWS temporary key ids (64 random bits; the secret is what must be unguessable).
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    return { accessKeyId, ...this.derive(accessKeyId), expiration: now + ttlSeconds * 1000 };
  }

  derive(accessKeyId: string): { secretKey: string; sessionToken: string } {
    return {
      secretKey: this.mac(`secret-key:${accessKeyId}`).slice(0, 40),
      sessionToken: `CS1${this.mac(`session-token:${accessKeyId}`)}`,
    };
  }

  private mac(text: string): string {
    return createHmac('sha256', this.masterKey).update(text).digest('base64url');
  }
}
