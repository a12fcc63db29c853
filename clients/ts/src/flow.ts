// `BASE_URL=… KEY_DIR=… tsx src/flow.ts`: one file through the whole upload
// flow with the typed client, against a running dev server (scripts/ts-client-check
// starts one): create a session, register a PDF with `partCount` 1, PUT its
// one part straight to S3 through the presigned URL and take S3's ETag,
// complete, finalize, then replay the finalize and read an error back (its
// code typed as the frontend's vocabulary, its `details.reason` and
// `correlationId`).
// Every answer is checked at run time; its shape is checked at compile time
// by the types generated from docs/openapi.json. Exits non-zero on any failure.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";

import { type ErrorCode, type UploadsClient, uploadsClient } from "./client.js";
import { accessToken, loadKey } from "./jwt.js";

const baseUrl = process.env.BASE_URL ?? "http://127.0.0.1:3000";
const keyDir = process.env.KEY_DIR;
if (!keyDir) throw new Error("KEY_DIR must name the directory src/keys.ts wrote");

const MIB = 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What openapi-fetch answers: the typed body of a success, or of an error. */
interface Answer<D, E> {
  data?: D;
  error?: E;
  response: Response;
}

/** The success body, once the status is the expected one. */
function expect<D, E>(answer: Answer<D, E>, status: number, what: string): D {
  const { data, error, response } = answer;
  if (response.status !== status || data === undefined) {
    throw new Error(`${what}: expected ${status}, got ${response.status}: ${JSON.stringify(error ?? data)}`);
  }
  assert.ok(response.headers.get("x-request-id"), `${what}: every answer carries x-request-id`);
  return data;
}

/** A small file that passes finalize's PDF signature check (`%PDF`). */
function pdfBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size).fill(".".charCodeAt(0));
  bytes.set(new TextEncoder().encode("%PDF-1.4\n% moc-uploads ts-client-check\n"));
  return bytes;
}

const steps: Array<[string, () => Promise<void>]> = [];
const step = (name: string, run: () => Promise<void>) => steps.push([name, run]);

// A user of its own per run: no seeded state and no earlier run's quota.
const user = `ts-client-${randomUUID()}`;
const api: UploadsClient = uploadsClient(baseUrl, accessToken(loadKey(keyDir), user));
const pdf = pdfBytes(256 * 1024);
const file = {
  category: "instruction",
  name: "ts-client-check.pdf",
  size: pdf.byteLength,
  type: "application/pdf",
  ext: "pdf",
} as const;
const title = `TS client check ${randomUUID().slice(0, 8)}`;

let sessionId = "";
let fileId = "";
let uploadId = "";
let partUrl = "";
let partHeaders: Record<string, string> = {};
let etag = "";
let fileUrl = "";
let mocId = "";

step("create a session (201)", async () => {
  const created = expect(
    await api.POST("/api/mocs/uploads/sessions", { body: { files: [file] } }),
    201,
    "create",
  );
  assert.match(created.sessionId, UUID);
  assert.equal(created.partSizeBytes, 5 * MIB);
  assert.ok(Date.parse(created.expiresAt) > Date.now(), `expiresAt ${created.expiresAt} is in the future`);
  sessionId = created.sessionId;
});

step("register the file with partCount 1 (201, one presigned URL)", async () => {
  const registered = expect(
    await api.POST("/api/mocs/uploads/sessions/{sessionId}/files", {
      params: { path: { sessionId } },
      body: { ...file, partCount: 1 },
    }),
    201,
    "register",
  );
  assert.match(registered.fileId, UUID);
  assert.ok(registered.uploadId.length > 0, "an upload ID");
  const urls = registered.presignedUrls ?? [];
  assert.equal(urls.length, 1, "one URL for one part");
  const [url] = urls;
  assert.ok(url);
  assert.equal(url.partNumber, 1);
  assert.equal(url.sizeBytes, pdf.byteLength, "a single part is the whole file");
  assert.ok(Date.parse(url.expiresAt) > Date.now(), "the URL has not expired");
  assert.equal(url.headers["Content-Length"], String(pdf.byteLength));
  const signed = new URL(url.url);
  assert.equal(signed.searchParams.get("partNumber"), "1");
  assert.equal(signed.searchParams.get("uploadId"), registered.uploadId);
  fileId = registered.fileId;
  uploadId = registered.uploadId;
  partUrl = url.url;
  partHeaders = url.headers;
});

step("PUT the part straight to S3 through its presigned URL (200, ETag)", async () => {
  // The signature covers Content-Length; fetch sets it from the body, as a
  // browser does (which may not set it itself). Every other header is sent
  // as given.
  const headers = Object.fromEntries(
    Object.entries(partHeaders).filter(([name]) => name.toLowerCase() !== "content-length"),
  );
  const response = await fetch(partUrl, { method: "PUT", headers, body: pdf });
  const text = await response.text();
  assert.equal(response.status, 200, `S3 answered ${response.status}: ${text}`);
  const answered = response.headers.get("etag");
  assert.ok(answered, "S3 answers the part's ETag");
  // A part's ETag is the quoted hex MD5 of its bytes.
  assert.equal(answered, `"${createHash("md5").update(pdf).digest("hex")}"`);
  etag = answered;
});

step("list the parts: the presigned upload is reconciled from S3 (200)", async () => {
  const listed = expect(
    await api.GET("/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/parts", {
      params: { path: { sessionId, fileId } },
    }),
    200,
    "list parts",
  );
  assert.equal(listed.parts.length, 1);
  const [part] = listed.parts;
  assert.ok(part);
  assert.equal(part.partNumber, 1);
  assert.equal(part.etag, etag);
  assert.equal(part.sizeBytes, pdf.byteLength);
});

step("complete the file with S3's ETag (200, fileUrl)", async () => {
  const completed = expect(
    await api.POST("/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/complete", {
      params: { path: { sessionId, fileId } },
      body: { parts: [{ partNumber: 1, etag }] },
    }),
    200,
    "complete",
  );
  assert.equal(completed.fileId, fileId);
  // {PUBLIC_FILE_BASE_URL}/{STAGE}/moc-instructions/{user}/{session}/{category}/{file}.{ext}
  assert.ok(
    completed.fileUrl.endsWith(`/moc-instructions/${user}/${sessionId}/instruction/${fileId}.pdf`),
    `fileUrl ${completed.fileUrl} follows the key layout (docs/contract.md §3)`,
  );
  fileUrl = completed.fileUrl;
});

step("finalize the session into a MOC (201)", async () => {
  const moc = expect(
    await api.POST("/api/mocs/uploads/finalize", {
      body: { uploadSessionId: sessionId, title, description: "Uploaded by clients/ts", tags: ["ts-client"] },
    }),
    201,
    "finalize",
  );
  // The 2xx answers of finalize are a MOC or "finalizing"; 201 is the MOC.
  assert.ok("id" in moc, `a MOC, not ${JSON.stringify(moc)}`);
  assert.match(moc.id, UUID);
  assert.equal(moc.title, title);
  assert.equal(moc.slug, title.toLowerCase().replaceAll(" ", "-"));
  assert.equal(moc.status, "private");
  assert.equal(moc.pdfKey, fileUrl);
  assert.deepEqual(moc.imageKeys, []);
  assert.deepEqual(moc.partsKeys, []);
  assert.deepEqual(moc.tags, ["ts-client"]);
  assert.ok(!moc.idempotent, "a new MOC is not a replay");
  mocId = moc.id;
});

step("finalize again: the same MOC, idempotent (200)", async () => {
  const replay = expect(
    await api.POST("/api/mocs/uploads/finalize", { body: { uploadSessionId: sessionId, title } }),
    200,
    "finalize replay",
  );
  assert.ok("id" in replay, `the stored MOC, not ${JSON.stringify(replay)}`);
  assert.equal(replay.id, mocId);
  assert.equal(replay.idempotent, true);
});

step("the session reads completed, with its MOC and file (200)", async () => {
  const session = expect(
    await api.GET("/api/mocs/uploads/sessions/{sessionId}", { params: { path: { sessionId } } }),
    200,
    "session status",
  );
  assert.equal(session.sessionId, sessionId);
  assert.equal(session.status, "completed");
  assert.equal(session.mocId, mocId);
  assert.equal(session.files.length, 1);
  const [stored] = session.files;
  assert.ok(stored);
  assert.equal(stored.fileId, fileId);
  assert.equal(stored.status, "completed");
  assert.equal(stored.fileUrl, fileUrl);
  assert.deepEqual(stored.uploadedParts, [1]);
});

step("an unknown session is 404 in the error envelope", async () => {
  const { data, error, response } = await api.GET("/api/mocs/uploads/sessions/{sessionId}", {
    params: { path: { sessionId: randomUUID() } },
  });
  assert.equal(response.status, 404);
  assert.equal(data, undefined);
  assert.ok(error, "an error body");
  assert.equal(error.success, false);
  // `code` is typed as the frontend's vocabulary: a code outside it would not compile here.
  const code: ErrorCode = error.error.code;
  assert.equal(code, "NOT_FOUND");
  assert.equal(error.error.type, "NOT_FOUND");
  assert.equal(error.error.details.reason, "NOT_FOUND");
  assert.equal(error.requestId, response.headers.get("x-request-id"));
  assert.equal(error.correlationId, error.requestId, "the support reference is the request ID");
});

let passed = 0;
let failed = 0;
for (const [name, run] of steps) {
  try {
    await run();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (cause) {
    failed += 1;
    console.log(`FAILED - ${name}\n  ${cause instanceof Error ? cause.message : String(cause)}`);
    // Each step needs what the one before it made.
    break;
  }
}
const skipped = steps.length - passed - failed;
console.log(`ts-client-flow: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
console.log(`(session ${sessionId || "-"}, file ${fileId || "-"}, upload ${uploadId || "-"}, MOC ${mocId || "-"})`);
process.exitCode = failed === 0 && skipped === 0 ? 0 : 1;
