// Cognito-shaped RS256 access tokens from a key made for each run, so the dev
// server verifies real signatures (AUTH_BYPASS off), as production does. A
// client that is not the browser frontend sends an access token as
// `Authorization: Bearer` (docs/contract.md §1); header-authenticated calls
// need no Origin check.
import { createPrivateKey, createSign, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_tsclientcheck";
/** The app client ID: an access token carries it as `client_id`. */
export const AUDIENCE = "moc-ts-client-check";
const KID = "ts-client-check";

/** Writes `key.pem`, `jwks.json` (for the server) and `auth.env` into `dir`. */
export function makeKeys(dir: string): void {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(join(dir, "key.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
  const jwk = publicKey.export({ format: "jwk" });
  writeFileSync(join(dir, "jwks.json"), JSON.stringify({ keys: [{ ...jwk, kid: KID, alg: "RS256", use: "sig" }] }));
  writeFileSync(join(dir, "auth.env"), `AUTH_ISSUER=${ISSUER}\nAUTH_AUDIENCE=${AUDIENCE}\n`);
}

export function loadKey(dir: string): KeyObject {
  return createPrivateKey(readFileSync(join(dir, "key.pem")));
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A Cognito access token for `sub`. */
export function accessToken(key: KeyObject, sub: string, expiresInSeconds = 600): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64({ alg: "RS256", typ: "JWT", kid: KID });
  const claims = b64({ sub, iss: ISSUER, client_id: AUDIENCE, token_use: "access", iat: now, exp: now + expiresInSeconds });
  const signature = createSign("RSA-SHA256").update(`${header}.${claims}`).sign(key).toString("base64url");
  return `${header}.${claims}.${signature}`;
}
