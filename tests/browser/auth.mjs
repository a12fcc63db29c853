// Real sign-in for the browser scenarios that need a user of their own:
// `node auth.mjs DIR` writes a key pair made for this run (DIR/key.pem,
// DIR/jwks.json, DIR/auth.env) that scripts/browser-check hands the dev
// server; tests/browser/check.mjs signs Cognito-shaped ID tokens with it and
// sets them as the `auth_token` cookie, as the production frontend's auth
// service does (docs/contract.md §1). Requests without a cookie stay the dev
// user (AUTH_BYPASS), as the other scenarios expect.
import { createPrivateKey, createSign, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ISSUER = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_browsercheck';
export const AUDIENCE = 'moc-browser-check';
const KID = 'browser-check';

function makeKeys(dir) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const jwk = publicKey.export({ format: 'jwk' });
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...jwk, kid: KID, alg: 'RS256', use: 'sig' }] }));
  writeFileSync(join(dir, 'auth.env'), `AUTH_ISSUER=${ISSUER}\nAUTH_AUDIENCE=${AUDIENCE}\n`);
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A Cognito ID token for `sub`, signed with DIR/key.pem: what the auth cookie holds. */
export function idToken(dir, sub, expiresInSeconds = 900) {
  const key = createPrivateKey(readFileSync(join(dir, 'key.pem')));
  const now = Math.floor(Date.now() / 1000);
  const header = b64({ alg: 'RS256', typ: 'JWT', kid: KID });
  const claims = b64({ sub, iss: ISSUER, aud: AUDIENCE, token_use: 'id', iat: now, exp: now + expiresInSeconds });
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key).toString('base64url');
  return `${header}.${claims}.${signature}`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node auth.mjs DIR');
  makeKeys(dir);
}
