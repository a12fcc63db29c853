// The upload and finalize scenarios, run against a dev server as the
// production frontend runs them, asserting what its user would see: every
// error's code is in the frontend's vocabulary (else the user sees a generic
// "contact support"), its support reference (`correlationId`) is the request
// ID, and an expired session puts the file in the upload manager's "expired"
// state on register, part upload, complete and finalize. Driven by
// scripts/frontend-check (BASE_URL, KEY_DIR, APP_ORIGIN, DATABASE_URL).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { Api, ApiErrorSchema, FileFailureSchema, seenCodes, type Moc, type Outcome } from "./api.js";
import { ApiErrorCodeSchema, fileStateAfter, parseApiError } from "./errors.js";
import { idToken, loadKey } from "./jwt.js";

const base = required("BASE_URL");
const key = loadKey(required("KEY_DIR"));
const databaseUrl = required("DATABASE_URL");
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

/**
 * The error `code` with `status`, as the frontend handles it: the body parses,
 * the code is one of its vocabulary (so the user sees its title and action,
 * not "contact support"), `type` is the same code, the finer `reason` is in
 * `details`, and the support reference is the request ID.
 */
function expectError<T>(outcome: Outcome<T>, status: number, code: string, reason = code) {
  assert.equal(outcome.ok, false, `expected ${status} ${code}, got a success`);
  if (outcome.ok) throw new Error("unreachable");
  assert.equal(outcome.generic, false, "the error body must parse, or the user sees a generic message");
  assert.equal(outcome.status, status, outcome.message);
  assert.ok(outcome.mapped.known, `${outcome.mapped.code} is not in the frontend's vocabulary`);
  assert.equal(outcome.mapped.code, code);
  assert.equal(outcome.type, code);
  assert.equal(outcome.details?.reason, reason);
  assert.ok(outcome.message.length > 0, "the user is told what happened");
  assert.ok(outcome.mapped.correlationId, "the user gets a support reference");
  assert.equal(outcome.mapped.correlationId, outcome.headers.get("x-request-id"));
  assert.equal(outcome.mapped.correlationId, outcome.headers.get("x-correlation-id"));
  return outcome;
}

/** Moves a session's expiry into the past, as an hour left idle would. */
function expire(sessionId: string): void {
  assert.match(sessionId, /^[0-9a-f-]{36}$/);
  execFileSync("psql", ["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", databaseUrl, "-c",
    `UPDATE upload_sessions SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 minute' WHERE id = '${sessionId}'`]);
}

/** The expired-session answer, and the upload manager's "expired" state it leads to. */
function expectExpired<T>(outcome: Outcome<T>, what: string): void {
  const error = expectError(outcome, 410, "EXPIRED_SESSION", "GONE");
  assert.equal(fileStateAfter(error.mapped), "expired", `${what}: the file is shown as expired, not failed`);
  assert.equal(error.details?.sessionExpired, true);
  assert.ok(Date.parse(String(error.details?.expiresAt)) < Date.parse(String(error.details?.now)));
}

const instruction = (name: string, size: number) =>
  ({ category: "instruction", name, size, type: "application/pdf", ext: "pdf" });

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
    const error = expectError(await api.finalize(session, `Zip ${run}`), 400, "FILE_ERROR", "FILE_VALIDATION_FAILED");
    const files = z.array(FileFailureSchema).parse(error.details?.files);
    assert.equal(files.length, 1);
    assert.equal(files[0].filename, "manual.pdf");
    assert.equal(files[0].reason, "magic-bytes");
  }],
  ["a title already taken suggests a free slug", async () => {
    const api = signedIn("conflict");
    const title = `Taken ${run}`;
    expectOk(await api.finalize(await uploaded(api, "a.pdf", pdf()), title), "first finalize");
    const error = expectError(await api.finalize(await uploaded(api, "b.pdf", pdf()), title), 409, "DUPLICATE_SLUG", "CONFLICT");
    assert.equal(error.mapped.action, "fix-input", "the user is asked for another title");
    assert.equal(typeof error.details?.suggestedSlug, "string");
    assert.ok(String(error.details?.suggestedSlug).startsWith(`taken-${run}`));
  }],
  ["too many finalizes say when to retry", async () => {
    const api = signedIn("limited");
    for (let i = 0; i < 10; i++) {
      expectError(await api.finalize(randomUUID(), "Nope"), 404, "NOT_FOUND");
    }
    const limited = expectError(await api.finalize(randomUUID(), "Nope"), 429, "TOO_MANY_REQUESTS", "RATE_LIMIT_EXCEEDED");
    assert.equal(limited.mapped.isRetryable, true, "a rate limit is retried, not shown as final");
    assert.equal(limited.mapped.action, "wait");
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
    const body: unknown = await response.json();
    assert.equal(ApiErrorSchema.parse(body).error.type, "FORBIDDEN");
    const mapped = parseApiError(body, response.headers);
    seenCodes.add(mapped.code);
    assert.ok(mapped.known, `${mapped.code} is in the frontend's vocabulary`);
    assert.equal(mapped.code, "FORBIDDEN");
    assert.equal(mapped.correlationId, response.headers.get("x-request-id"));
  }],
  ["an expired session on register shows the file as expired", async () => {
    const api = signedIn("expired-register");
    const meta = instruction("manual.pdf", 64);
    const { sessionId } = expectOk(await api.createSession([meta]), "create session");
    expire(sessionId);
    expectExpired(await api.register(sessionId, meta), "register");
    expectExpired(await api.registerBatch(sessionId, [meta]), "batch register");
  }],
  ["an expired session on part upload shows the file as expired", async () => {
    const api = signedIn("expired-part");
    const meta = instruction("manual.pdf", 64);
    const { sessionId } = expectOk(await api.createSession([meta]), "create session");
    const { fileId } = expectOk(await api.register(sessionId, meta), "register");
    expire(sessionId);
    expectExpired(await api.uploadPart(sessionId, fileId, pdf()), "part upload");
  }],
  ["an expired session on complete shows the file as expired", async () => {
    const api = signedIn("expired-complete");
    const meta = instruction("manual.pdf", 64);
    const { sessionId } = expectOk(await api.createSession([meta]), "create session");
    const { fileId } = expectOk(await api.register(sessionId, meta), "register");
    const { etag } = expectOk(await api.uploadPart(sessionId, fileId, pdf()), "upload part");
    expire(sessionId);
    expectExpired(await api.complete(sessionId, fileId, etag), "complete");
  }],
  ["an expired session on finalize shows the upload as expired", async () => {
    const api = signedIn("expired-finalize");
    const session = await uploaded(api, "manual.pdf", pdf());
    expire(session);
    expectExpired(await api.finalize(session, `Late ${run}`), "finalize");
  }],
  ["a file over its limit and a type not allowed are shown as what to fix", async () => {
    const api = signedIn("limits");
    const tooLarge = expectError(await api.createSession([instruction("huge.pdf", 100 * 1024 * 1024)]),
      413, "SIZE_TOO_LARGE", "FILE_TOO_LARGE");
    assert.equal(tooLarge.mapped.action, "fix-input");
    const png = { ...instruction("a.pdf", 10), type: "image/png" };
    expectError(await api.createSession([png]), 415, "INVALID_TYPE", "UNSUPPORTED_MEDIA_TYPE");
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
const unknown = [...seenCodes].filter((code) => !ApiErrorCodeSchema.safeParse(code).success);
if (unknown.length > 0) {
  failed++;
  console.log(`not ok - every error code is in the frontend's vocabulary: ${unknown.join(", ")}`);
} else {
  console.log(`ok - every error code answered (${[...seenCodes].sort().join(", ")}) is in the frontend's vocabulary`);
}
console.log(`${scenarios.length - failed}/${scenarios.length} frontend scenarios passed`);
process.exit(failed === 0 ? 0 : 1);
