// `tsx src/keys.ts DIR`: the key pair scripts/ts-client-check gives the dev
// server (DIR/jwks.json, DIR/auth.env); src/flow.ts signs with DIR/key.pem.
import { makeKeys } from "./jwt.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: tsx src/keys.ts DIR");
makeKeys(dir);
