// `tsx src/keys.ts DIR`: the key pair scripts/frontend-check gives the dev
// server (DIR/jwks.json), and the issuer and audience it must check
// (DIR/auth.env), so both sides read them from src/jwt.ts.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AUDIENCE, ISSUER, makeKeys } from "./jwt.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: tsx src/keys.ts DIR");
makeKeys(dir);
writeFileSync(join(dir, "auth.env"), `AUTH_ISSUER=${ISSUER}\nAUTH_AUDIENCE=${AUDIENCE}\n`);
