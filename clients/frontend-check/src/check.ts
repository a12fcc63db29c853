// The finalize scenarios, run against a dev server as the production
// frontend runs them, asserting what its user would see. Driven by
// scripts/frontend-check (BASE_URL, KEY_DIR, APP_ORIGIN).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { Api, ApiErrorSchema, FileFailureSchema, type Moc, type Outcome } from "./api.js";
import { idToken, loadKey } from "./jwt.js";

const base = required("BASE_URL");
const key = loadKey(required("KEY_DIR"));
const origin = process.env.APP_ORIGIN ?? "http://localhost:5173";
const run = randomUUID().slice(0, 8);

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

/** A signed-in user of the frontend: a fresh user per scenario keeps rate limits apart. */
function signedIn(name: string, expiresInSeconds = 600): Api {
  const cookie = `auth_token=${idToken(key, `fe-${name}-${run}`, expiresInSeconds)}`;
  return new Api(base, { origin, cookie });
}

function expectOk<T>(outcome: Outcome<T>, what: string): T {
  if (!outcome.ok) assert.fail(`${what}: ${outcome.status} ${outcome.type}: ${outcome.message}`);
  return outcome.data;
}

function expectError<T>(outcome: Outcome<T>, status: number, type: string) {
  assert.equal(outcome.ok, false, `expected ${status} ${type}, got a success`);
  if (outcome.ok) throw new Error("unreachable");
  assert.equal(outcome.generic, false, "the error body must parse, or the user sees a generic message");
  assert.equal(outcome.status, status);
  assert.equal(outcome.type, type);
  assert.ok(outcome.message.length > 0, "the user is told what happened");
  return outcome;
}

const pdf = (len = 64) => {
  const bytes = new Uint8Array(len).fill(0x20);
  bytes.set(new TextEncoder().encode("%PDF-1.7\n"));
  return bytes;
};

/** A session with `name` uploaded (one proxied part) and completed. */
async function uploaded(api: Api, name: string, bytes: Uint8Array): Promise<string> {
  const meta = { category: "instruction", name, size: bytes.length, type: "application/pdf", ext: "pdf" };
  const { sessionId } = expectOk(await api.createSession([meta]), "create session");
  const { fileId } = expectOk(await api.register(sessionId, meta), "register");
  const { etag } = expectOk(await api.uploadPart(sessionId, fileId, bytes), "upload part");
  expectOk(await api.complete(sessionId, fileId, etag), "complete");
  return sessionId;
}

const scenarios: Array<[string, () => Promise<void>]> = [
  ["finalizing shows the new MOC", async () => {
    const api = signedIn("happy");
    const session = await uploaded(api, "manual.pdf", pdf());
    const outcome = await api.finalize(session, `Castle ${run}`);
    const moc = expectOk(outcome, "finalize");
    assert.equal(outcome.status, 201);
    assert.equal(moc.title, `Castle ${run}`);
    assert.equal(moc.status, "private");
    assert.ok(moc.pdfKey, "the instruction PDF is linked");
    assert.equal(outcome.headers.get("x-correlation-id"), outcome.headers.get("x-request-id"));
  }],
  ["a double-clicked finalize shows the same MOC every time, never 'finalizing'", async () => {
    const api = signedIn("double");
    const session = await uploaded(api, "manual.pdf", pdf());
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => api.finalize(session, `Twice ${run}`)));
    const mocs: Moc[] = outcomes.map((o) => expectOk(o, "finalize"));
    assert.equal(new Set(mocs.map((m) => m.id)).size, 1, "one MOC");
    assert.deepEqual(outcomes.map((o) => o.status).sort(), [200, 200, 200, 200, 200, 201]);
  }],
  ["a ZIP sent as a PDF lists the file and why it failed", async () => {
    const api = signedIn("zip");
    const zip = new Uint8Array(64);
    zip.set([0x50, 0x4b, 0x03, 0x04]);
    const session = await uploaded(api, "manual.pdf", zip);
    const error = expectError(await api.finalize(session, `Zip ${run}`), 400, "FILE_VALIDATION_FAILED");
    const files = z.array(FileFailureSchema).parse(error.details?.files);
    assert.equal(files.length, 1);
    assert.equal(files[0].filename, "manual.pdf");
    assert.equal(files[0].reason, "magic-bytes");
  }],
  ["a title already taken suggests a free slug", async () => {
    const api = signedIn("conflict");
    const title = `Taken ${run}`;
    expectOk(await api.finalize(await uploaded(api, "a.pdf", pdf()), title), "first finalize");
    const error = expectError(await api.finalize(await uploaded(api, "b.pdf", pdf()), title), 409, "CONFLICT");
    assert.equal(typeof error.details?.suggestedSlug, "string");
    assert.ok(String(error.details?.suggestedSlug).startsWith(`taken-${run}`));
  }],
  ["too many finalizes say when to retry", async () => {
    const api = signedIn("limited");
    for (let i = 0; i < 10; i++) {
      expectError(await api.finalize(randomUUID(), "Nope"), 404, "NOT_FOUND");
    }
    const limited = expectError(await api.finalize(randomUUID(), "Nope"), 429, "RATE_LIMIT_EXCEEDED");
    assert.ok(Number(limited.headers.get("retry-after")) > 0, "Retry-After is readable");
    assert.match(limited.headers.get("access-control-expose-headers") ?? "", /Retry-After/);
  }],
  ["an expired session cookie asks the user to sign in again", async () => {
    const api = signedIn("expired", -600);
    expectError(await api.finalize(randomUUID(), "Late"), 401, "UNAUTHORIZED");
  }],
  ["a control character in the title names the field", async () => {
    const api = signedIn("nul");
    const error = expectError(await api.finalize(randomUUID(), "Bad\u0000title"), 422, "VALIDATION_ERROR");
    assert.ok(Array.isArray((error.details?.errors as Record<string, unknown>)?.title));
  }],
  ["a unicode title comes back exactly as typed", async () => {
    const api = signedIn("unicode");
    const title = `Château 城 🏰 e\u0301 ${run}`;
    const moc = expectOk(await api.finalize(await uploaded(api, "plan ü.pdf", pdf()), title), "finalize");
    assert.equal(moc.title, title);
  }],
  ["a page on another origin cannot use the cookie to change data", async () => {
    const cookie = `auth_token=${idToken(key, `fe-csrf-${run}`)}`;
    const response = await fetch(`${base}/api/mocs/uploads/sessions`, {
      method: "POST",
      credentials: "include",
      headers: { Origin: "https://evil.example", Cookie: cookie, "Content-Type": "application/json" },
      body: JSON.stringify({ files: [{ category: "instruction", name: "x.pdf", size: 10, type: "application/pdf", ext: "pdf" }] }),
    });
    assert.equal(response.status, 403);
    assert.equal(response.headers.get("access-control-allow-origin"), null, "no CORS for that origin");
    assert.equal(ApiErrorSchema.parse(await response.json()).error.type, "FORBIDDEN");
  }],
];

let failed = 0;
for (const [name, scenario] of scenarios) {
  try {
    await scenario();
    console.log(`ok - ${name}`);
  } catch (error) {
    failed++;
    console.log(`not ok - ${name}\n  ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  }
}
console.log(`${scenarios.length - failed}/${scenarios.length} frontend scenarios passed`);
process.exit(failed === 0 ? 0 : 1);
