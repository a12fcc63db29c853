// Cognito-shaped RS256 tokens from a key made for this run, so the dev
// server verifies real signatures (AUTH_BYPASS off), as production does.
import { createPrivateKey, createSign, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_frontendcheck";
export const AUDIENCE = "moc-frontend-check";
const KID = "frontend-check";

/** Writes `key.pem` and `jwks.json` into `dir`. */
export function makeKeys(dir: string): void {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(join(dir, "key.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
  const jwk = publicKey.export({ format: "jwk" });
  writeFileSync(join(dir, "jwks.json"), JSON.stringify({ keys: [{ ...jwk, kid: KID, alg: "RS256", use: "sig" }] }));
}

export function loadKey(dir: string): KeyObject {
  return createPrivateKey(readFileSync(join(dir, "key.pem")));
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A Cognito ID token, what the frontend's auth service puts in `auth_token`. */
export function idToken(key: KeyObject, sub: string, expiresInSeconds = 600): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64({ alg: "RS256", typ: "JWT", kid: KID });
  const claims = b64({ sub, iss: ISSUER, aud: AUDIENCE, token_use: "id", iat: now, exp: now + expiresInSeconds });
  const signature = createSign("RSA-SHA256").update(`${header}.${claims}`).sign(key).toString("base64url");
  return `${header}.${claims}.${signature}`;
}
