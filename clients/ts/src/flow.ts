// `BASE_URL=… KEY_DIR=… tsx src/flow.ts`: one file through the whole upload
// flow with the typed client, against a running dev server (scripts/ts-client-check
// starts one, with part URLs that live PRESIGN_TTL_SECONDS=3 seconds): create a
// session, register a two-part PDF with its CRC32C (src/upload.ts,
// docs/contract.md §4.14) and no URLs, ask for each part's URL just before its
// PUT (§4.12, with the file's size and CRC32C: another file is refused with
// 409 FILE_MISMATCH), see S3 refuse a corrupted part (400 BadDigest) and an
// expired URL (403, signed afresh and sent again by `sendPart`), PUT both
// parts straight to S3 with the checksum headers their URLs were signed for,
// complete with `{}` (S3's parts, no ETags), finalize (the file verified),
// then replay the finalize and read an error back (its code typed as the
// frontend's vocabulary, its `details.reason` and `correlationId`).
// Every answer is checked at run time; its shape is checked at compile time
// by the types generated from docs/openapi.json. Exits non-zero on any failure.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";

import { type ErrorCode, type UploadsClient, uploadsClient } from "./client.js";
import { accessToken, loadKey } from "./jwt.js";
import { type FileChecksums, type PresignedPartUrl, checksums, crc32c, crc32cBase64, putPart, sendPart } from "./upload.js";

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
// Two parts: 5 MiB, then 256 KiB.
const pdf = pdfBytes(5 * MIB + 256 * 1024);
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
let partSize = 0;
let sums: FileChecksums = { crc32c: "", partChecksums: [] };
let etags: string[] = [];
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
  partSize = created.partSizeBytes;
});

step("the client's CRC32C gives the check value of \"123456789\" (E3069283)", async () => {
  assert.equal(crc32cBase64(crc32c(new TextEncoder().encode("123456789"))), "4waSgw==");
});

step("register the file with its CRC32C, no URLs yet (201)", async () => {
  sums = checksums(pdf, partSize);
  assert.equal(sums.partChecksums.length, 2);
  const registered = expect(
    await api.POST("/api/mocs/uploads/sessions/{sessionId}/files", {
      params: { path: { sessionId } },
      body: { ...file, crc32c: sums.crc32c },
    }),
    201,
    "register",
  );
  assert.match(registered.fileId, UUID);
  assert.ok(registered.uploadId.length > 0, "an upload ID");
  assert.equal(registered.crc32c, sums.crc32c, "the declared CRC32C comes back");
  assert.equal(registered.presignedUrls, undefined, "URLs are asked for just before use, not at registration");
  fileId = registered.fileId;
  uploadId = registered.uploadId;
});

/** Part n's URL, asked for now (§4.12) with the file's size and CRC32C and the part's CRC32C. */
async function urlFor(n: number, crc = sums.crc32c): Promise<PresignedPartUrl> {
  const answer = expect(
    await api.POST("/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/urls", {
      params: { path: { sessionId, fileId } },
      body: { partNumbers: [n], partChecksums: sums.partChecksums.filter((p) => p.partNumber === n), size: pdf.byteLength, crc32c: crc },
    }),
    200,
    `URL for part ${n}`,
  );
  const [url] = answer.presignedUrls;
  assert.ok(url && answer.presignedUrls.length === 1, `one URL, for part ${n}`);
  const size = n === 1 ? partSize : pdf.byteLength - partSize;
  assert.equal(url.partNumber, n);
  assert.equal(url.sizeBytes, size);
  assert.equal(url.headers["Content-Length"], String(size));
  // The part's CRC32C is among the headers to send, and signed.
  assert.equal(url.headers["x-amz-checksum-crc32c"], sums.partChecksums[n - 1]?.crc32c);
  assert.equal(url.headers["x-amz-sdk-checksum-algorithm"], "CRC32C");
  const signed = new URL(url.url);
  assert.equal(signed.searchParams.get("partNumber"), String(n));
  assert.equal(signed.searchParams.get("uploadId"), uploadId);
  assert.ok(signed.searchParams.get("X-Amz-SignedHeaders")?.split(";").includes("x-amz-checksum-crc32c"), "the checksum header is signed");
  // PRESIGN_TTL_SECONDS=3 (scripts/ts-client-check).
  assert.equal(signed.searchParams.get("X-Amz-Expires"), "3");
  return url;
}

step("another file's CRC32C gets no URL (409 FILE_MISMATCH)", async () => {
  const { error, response } = await api.POST("/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/urls", {
    params: { path: { sessionId, fileId } },
    body: { partNumbers: [1], size: pdf.byteLength, crc32c: "AAAAAQ==" },
  });
  assert.equal(response.status, 409, JSON.stringify(error));
  assert.equal(error?.error.code, "FILE_ERROR");
  assert.equal(error?.error.details.reason, "FILE_MISMATCH");
});

const partBody = (n: number) => pdf.slice((n - 1) * partSize, n * partSize);

step("a part whose bytes are not its CRC32C is refused by S3 (400 BadDigest)", async () => {
  const first = await urlFor(1);
  const corrupted = partBody(1);
  corrupted[1000] = (corrupted[1000] ?? 0) ^ 0xff;
  const response = await putPart(first, corrupted);
  const text = await response.text();
  assert.equal(response.status, 400, `S3 answered ${response.status}: ${text}`);
  assert.match(text, /<Code>BadDigest<\/Code>/);
});

step("a URL that expired before its PUT is refused (403) and signed afresh; both parts stored (200, ETags)", async () => {
  etags = [];
  const stale = await urlFor(1);
  await new Promise((resolve) => setTimeout(resolve, 4_000));
  let signs = 0;
  const first = await sendPart(async () => (signs++ === 0 ? stale : urlFor(1)), partBody(1));
  // S3 refuses the expired URL with 403, or closes the connection as it
  // refuses it before reading the body (a failed fetch, 0); either way one
  // fresh URL and one more PUT.
  console.log(`  part 1 on an expired URL, then a fresh one: S3 answered ${first.statuses.join(", ")} (0: no answer)`);
  assert.equal(first.statuses.length, 2, `statuses ${first.statuses.join(", ")}`);
  assert.ok([403, 0].includes(first.statuses[0] ?? -1), `S3 refused the expired URL (${first.statuses[0]})`);
  assert.equal(first.statuses[1], 200, "then took the part on a fresh one");
  assert.equal(signs, 2, "signed once more after the 403");
  const second = await sendPart(() => urlFor(2), partBody(2));
  assert.deepEqual(second.statuses, [200]);
  for (const [i, sent] of [first, second].entries()) {
    // A part's ETag is the quoted hex MD5 of its bytes.
    assert.equal(sent.etag, `"${createHash("md5").update(partBody(i + 1)).digest("hex")}"`);
    etags.push(sent.etag);
  }
});

step("an expired URL's 403 says so (AccessDenied, Request has expired)", async () => {
  const url = await urlFor(2);
  await new Promise((resolve) => setTimeout(resolve, 4_000));
  // S3 may close the connection before the body is sent: try again for the answer.
  let response: Response | undefined;
  for (let attempt = 0; !response && attempt < 5; attempt++) response = await putPart(url, partBody(2)).catch(() => undefined);
  assert.ok(response, "S3 answered the expired URL");
  const text = await response.text();
  assert.equal(response.status, 403, text);
  assert.match(text, /AccessDenied/);
  assert.match(text, /expired/i);
});

step("list the parts: the presigned upload is reconciled from S3 (200)", async () => {
  const listed = expect(
    await api.GET("/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/parts", {
      params: { path: { sessionId, fileId } },
    }),
    200,
    "list parts",
  );
  assert.deepEqual(
    listed.parts.map(({ partNumber, etag, sizeBytes }) => ({ partNumber, etag, sizeBytes })),
    etags.map((etag, i) => ({ partNumber: i + 1, etag, sizeBytes: i === 0 ? partSize : pdf.byteLength - partSize })),
    "the parts S3 stored: the good bytes, not the refused ones",
  );
});

step("complete the file with {}: S3's parts, no ETags (200, fileUrl; S3 checks the whole CRC32C)", async () => {
  const completed = expect(
    await api.POST("/api/mocs/uploads/sessions/{sessionId}/files/{fileId}/complete", {
      params: { path: { sessionId, fileId } },
      body: {},
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

step("finalize the session into a MOC (201), the file verified", async () => {
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
  assert.deepEqual(
    moc.files.map(({ name, crc32c, checksumVerified }) => ({ name, crc32c, checksumVerified })),
    [{ name: file.name, crc32c: sums.crc32c, checksumVerified: true }],
    "the MOC's file carries the CRC32C this client computed, verified in S3",
  );
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

step("the session reads completed, with its MOC and its verified file (200)", async () => {
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
  assert.deepEqual(stored.uploadedParts, [1, 2]);
  assert.equal(stored.crc32c, sums.crc32c);
  assert.equal(stored.checksumVerified, true);
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
