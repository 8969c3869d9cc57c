// Secrets the database must hold but must not reveal (the OpenID and VAPID private keys): AES-256-GCM
// under a key derived from the master key, so a copy of the database alone is useless.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

function sealKey(masterKey: Buffer, purpose: string): Buffer {
  return createHmac('sha256', masterKey).update(`${purpose}-seal`).digest();
}

export function seal(masterKey: Buffer, purpose: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(masterKey, purpose), iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((part) => part.toString('base64')).join('.');
}

/** Throws when the value was sealed under another master key or purpose, or was altered. */
export function unseal(masterKey: Buffer, purpose: string, sealed: string): string {
  const [iv, tag, body] = sealed.split('.').map((part) => Buffer.from(part, 'base64'));
  const decipher = createDecipheriv('aes-256-gcm', sealKey(masterKey, purpose), iv!);
  decipher.setAuthTag(tag!);
  return Buffer.concat([decipher.update(body!), decipher.final()]).toString('utf8');
}
