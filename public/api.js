// The upload API, as the page calls it: plain fetch, cookies included (the
// production frontend authenticates with an httpOnly cookie), JSON in and
// out. Contract: docs/contract.md §4; error body per §0.

/** Where the API lives: the same origin, as Vercel serves public/ next to it. */
export const API_BASE = document.querySelector('meta[name="moc-api-base"]')?.content || '/api/mocs/uploads';

/**
 * An API error: the code (one of the production frontend's vocabulary,
 * docs/contract.md §0), the human message, the details object, the finer
 * code (`details.reason`) and the support reference (`correlationId`).
 */
export class ApiError extends Error {
  constructor(status, code, message, details, correlationId) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details ?? {};
    this.reason = this.details.reason ?? code;
    this.correlationId = correlationId ?? null;
  }
}

/**
 * Reads an error body. The contract's shape is
 * `{success:false, error:{code, type, message, details:{reason, …}},
 * requestId, correlationId}`; older servers sent `{error:"CODE", message,
 * details}`. Both are read, so the page works against either while they are
 * deployed side by side. The support reference is the body's
 * `correlationId`, else the `X-Correlation-Id` header.
 */
export function toApiError(status, body, headers) {
  const nested = body && typeof body.error === 'object' && body.error !== null ? body.error : null;
  const code = nested?.code ?? nested?.type ?? (typeof body?.error === 'string' ? body.error : `HTTP_${status}`);
  const message = nested?.message ?? body?.message ?? `The server answered ${status}`;
  const details = nested?.details ?? body?.details ?? {};
  const correlationId = body?.correlationId ?? headers?.get('x-correlation-id') ?? null;
  return new ApiError(status, code, message, details, correlationId);
}

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(API_BASE + path, {
      method,
      credentials: 'include',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (cause) {
    throw new ApiError(0, 'NETWORK_ERROR', `Could not reach the upload API (${cause.message})`, { retryable: true });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's HTML page, say): the status says enough.
  }
  if (!response.ok) throw toApiError(response.status, json, response.headers);
  // Success bodies are flat (§0); tolerate a `{data}` wrapper all the same.
  return json && typeof json === 'object' && 'data' in json && json.success ? json.data : json;
}

const enc = encodeURIComponent;
const session = (id) => `/sessions/${enc(id)}`;
const file = (sid, fid) => `${session(sid)}/files/${enc(fid)}`;

export const api = {
  /** §4.1 → {sessionId, partSizeBytes, expiresAt} */
  createSession: (files, title) => call('POST', '/sessions', title ? { files, title } : { files }),
  /** §4.15 → {sessions: [SessionView…], nextCursor}: the caller's sessions, from any device. */
  listSessions: (status = 'active') => call('GET', `/sessions?status=${enc(status)}&limit=50`),
  /** §4.3 (items may carry crc32c, §4.14; without partCount no URLs) → {results: [{index, fileId?, uploadId?, error?}]} */
  registerBatch: (sid, files) => call('POST', `${session(sid)}/files/batch`, { files }),
  /**
   * §4.12 → {fileId, presignedUrls}. `ask`: {partNumbers, partChecksums?,
   * size?, crc32c?}; `size` and `crc32c` are the file about to be sent, and
   * one that is not the registered file is refused (409 FILE_MISMATCH)
   * before any byte goes to S3.
   */
  freshUrls: (sid, fid, ask) => call('POST', `${file(sid, fid)}/urls`, ask),
  /** §4.5 → {parts: [{partNumber, etag, sizeBytes, uploadedAt}]}, reconciled with S3 */
  listParts: (sid, fid) => call('GET', `${file(sid, fid)}/parts`),
  /** §4.6 with `{}`: S3's parts complete the file, no ETags needed → {fileId, fileUrl} */
  complete: (sid, fid) => call('POST', `${file(sid, fid)}/complete`, {}),
  /** §4.7 → the MOC */
  finalize: (sid, title) => call('POST', '/finalize', { uploadSessionId: sid, title }),
  /** §4.8 → {sessionId, status, expiresAt, files: [...], mocId?} */
  status: (sid) => call('GET', session(sid)),
  /** §4.9 */
  cancel: (sid) => call('DELETE', session(sid)),
  /** §4.11 → {sessionId, expiresAt} */
  extend: (sid) => call('POST', `${session(sid)}/extend`),
};
