// The upload itself: hash each file (CRC32C, in a worker), register it with
// its checksums, PUT the parts straight to S3 through presigned URLs signed
// for each part's CRC32C (a few at a time, each retried with backoff),
// complete each file, finalize. It also resumes: what is saved in
// localStorage plus what the server and S3 say is uploaded is enough to send
// only the missing parts.

import { api, ApiError } from './api.js';
import { checksumFile } from './crc32c.js';

/** Parts in flight at once, over all files: enough to fill a typical uplink. */
export const PARALLEL_PARTS = 4;
/** Attempts per part before the upload stops with an error. */
const PART_ATTEMPTS = 5;
/** A presigned URL this close to its expiry is replaced before use. */
const URL_MARGIN_MS = 60_000;
/** The session is extended (docs/contract.md §4.11) when less than this remains. */
export const EXTEND_WHEN_LEFT_MS = 5 * 60_000;
const EXTEND_CHECK_MS = 15_000;
/** Batch registration takes at most MAX_BATCH_SIZE files (default 10). */
const BATCH = 10;

const STORAGE_KEY = 'moc-upload-session';

/**
 * Test hooks, for scripts/browser-check only. They come from a
 * `<meta name="moc-test-hooks">` that public/index.html does not have: the
 * dev server adds it to the page it serves only while its environment sets
 * MOC_PAGE_TEST_HOOKS (dev/src/statics.rs). Vercel serves public/ as the
 * files are, and nothing in a deployment writes that tag, so no production
 * page, URL or setting can turn a hook on (a query parameter could).
 *
 * - `flipByte: {file, part}`: the first PUT of that part of the file named
 *   `file` carries one flipped byte, so S3 answers 400 BadDigest and the
 *   page must send that part again, read afresh.
 */
const TEST_HOOKS = (() => {
  const tag = document.querySelector('meta[name="moc-test-hooks"]');
  try {
    return tag ? JSON.parse(tag.content) : {};
  } catch {
    return {};
  }
})();

/** The body of a part's PUT: its slice of the file, or a corrupted copy under the flipByte hook. */
async function partBody(f, n, blob, attempt) {
  const hook = TEST_HOOKS.flipByte;
  if (!hook || attempt !== 1 || hook.file !== f.meta.name || hook.part !== n) return blob;
  const bytes = new Uint8Array(await blob.arrayBuffer());
  bytes[bytes.length >> 1] ^= 0xff;
  return new Blob([bytes]);
}

/** Headers a page may not set itself (the browser sends them). */
const BROWSER_SET = new Set(['content-length', 'host']);

export const saved = {
  load() {
    try {
      return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    } catch {
      return null;
    }
  },
  store(state) {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  },
  clear() {
    localStorage.removeItem(STORAGE_KEY);
  },
};

const EXT_TYPES = {
  pdf: 'application/pdf',
  csv: 'text/csv',
  txt: 'text/plain',
  json: 'application/json',
  xml: 'application/xml',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  xls: 'application/vnd.ms-excel',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  heic: 'image/heic',
  heif: 'image/heif',
};

/** The metadata the API wants for a chosen file (§4.1 FileMetadata). */
export function describe(file, category) {
  const dot = file.name.lastIndexOf('.');
  const ext = dot > 0 ? file.name.slice(dot + 1).toLowerCase() : '';
  // Browsers leave `type` empty for many parts-list formats; the extension
  // is the better guess then. The server checks the real bytes at finalize.
  const type = file.type || EXT_TYPES[ext] || 'application/octet-stream';
  return { category, name: file.name, size: file.size, type, ext };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One PUT of one part to S3 with the headers its URL was signed for (the
 * part's `x-amz-checksum-crc32c` among them), with upload progress; resolves
 * to the ETag. A 400 BadDigest (the bytes are not the declared CRC32C) is
 * rejected with `badDigest`.
 */
function putPart({ url, headers }, blob, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (!BROWSER_SET.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        // Readable only when the bucket's CORS rule exposes ETag.
        const etag = xhr.getResponseHeader('ETag');
        if (etag) resolve(etag);
        else reject(Object.assign(new Error('S3 answered without a readable ETag: the bucket CORS rule must expose ETag'), { fatal: true }));
      } else {
        // Garage spells it InvalidDigest.
        const badDigest = xhr.status === 400 && /<Code>(BadDigest|InvalidDigest)<\/Code>/.test(xhr.responseText);
        const what = badDigest ? "S3 answered 400 BadDigest (the bytes that arrived do not match the part's CRC32C)" : `S3 answered ${xhr.status}`;
        reject(Object.assign(new Error(what), { status: xhr.status, badDigest }));
      }
    };
    xhr.onerror = () => reject(new Error('the network failed (or S3 refused the CORS preflight)'));
    xhr.onabort = () => reject(Object.assign(new Error('cancelled'), { cancelled: true }));
    signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}

/**
 * One upload session. `onChange` is called whenever progress or state moves;
 * the UI reads `files`, `bytesDone()`, `totalBytes()` and `rate()`.
 */
export class Upload {
  constructor({ title, onChange, log = () => {} }) {
    this.title = title;
    this.onChange = onChange;
    this.log = log;
    this.files = [];
    this.sessionId = null;
    this.partSizeBytes = 0;
    this.expiresAt = null;
    this.controller = new AbortController();
    this.samples = [];
    this.partsSent = 0;
  }

  // ---- progress -------------------------------------------------------

  totalBytes() {
    return this.files.reduce((sum, f) => sum + f.size, 0);
  }

  fileBytesDone(f) {
    let done = 0;
    for (const n of f.parts.keys()) done += this.partSize(f, n);
    for (const loaded of f.inFlight.values()) done += loaded;
    return done;
  }

  bytesDone() {
    return this.files.reduce((sum, f) => sum + this.fileBytesDone(f), 0);
  }

  /** Bytes per second over the last five seconds. */
  rate() {
    const now = performance.now();
    this.samples = this.samples.filter((s) => now - s.at < 5000);
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return last.at > first.at ? ((last.bytes - first.bytes) * 1000) / (last.at - first.at) : 0;
  }

  changed() {
    this.samples.push({ at: performance.now(), bytes: this.bytesDone() });
    this.onChange(this);
  }

  // ---- persistence ----------------------------------------------------

  persist() {
    saved.store({
      sessionId: this.sessionId,
      title: this.title,
      partSizeBytes: this.partSizeBytes,
      expiresAt: this.expiresAt,
      files: this.files.map(({ meta, fileId, partCount, fileUrl, crc32c }) => ({ ...meta, fileId, partCount, fileUrl, crc32c })),
    });
  }

  // ---- the flow -------------------------------------------------------

  /** A new upload of `chosen`: [{file, category}]. */
  async start(chosen) {
    this.files = chosen.map(({ file, category }) => this.track(file, describe(file, category)));
    this.status = 'creating the session';
    this.changed();
    const created = await api.createSession(this.files.map((f) => f.meta));
    this.sessionId = created.sessionId;
    this.partSizeBytes = created.partSizeBytes;
    this.expiresAt = created.expiresAt;
    for (const f of this.files) f.partCount = Math.max(1, Math.ceil(f.size / this.partSizeBytes));
    this.persist();
    await this.hash(this.files);
    await this.register(this.files);
    return this.run();
  }

  /**
   * Resumes the saved upload with the files the user chose again (a page
   * cannot keep File objects over a reload). Asks the server what it holds
   * and sends only what is missing.
   */
  async resume(state, chosen) {
    this.sessionId = state.sessionId;
    this.partSizeBytes = state.partSizeBytes;
    this.expiresAt = state.expiresAt;
    this.title = this.title || state.title;
    const status = await this.fetchStatus();
    if (status?.mocId) {
      this.files = status.files.map((s) => Object.assign(this.track(null, { name: s.name, size: s.size, category: s.category }), { fileUrl: s.fileUrl }));
      this.takeVerification(status.files);
      return { alreadyFinalized: true, mocId: status.mocId };
    }
    if (status && status.status !== 'active') {
      // The frontend's vocabulary: an expired session is EXPIRED_SESSION,
      // any other end of the session a CONFLICT (docs/contract.md §0).
      const [httpStatus, code] = status.status === 'expired' ? [410, 'EXPIRED_SESSION'] : [409, 'CONFLICT'];
      throw new ApiError(httpStatus, code, `This upload session is ${status.status}; start a new upload.`, { reason: 'SESSION_' + String(status.status).toUpperCase() });
    }
    if (status?.expiresAt) this.expiresAt = status.expiresAt;
    if (status?.partSizeBytes) this.partSizeBytes = status.partSizeBytes;

    const serverFiles = new Map((status?.files ?? []).map((f) => [f.fileId, f]));
    this.files = state.files.map((meta) => {
      const match = chosen.find(({ file }) => file.name === meta.name && file.size === meta.size);
      if (!match) throw new ApiError(0, 'FILE_NOT_CHOSEN', `Choose ${meta.name} (${meta.size} bytes) again to resume.`, {});
      const f = this.track(match.file, { category: meta.category, name: meta.name, size: meta.size, type: meta.type, ext: meta.ext });
      f.fileId = meta.fileId;
      f.partCount = meta.partCount;
      f.fileUrl = meta.fileUrl ?? serverFiles.get(meta.fileId)?.fileUrl;
      if (serverFiles.get(meta.fileId)?.status === 'completed') f.fileUrl = serverFiles.get(meta.fileId).fileUrl;
      // The CRC32C the upload was registered with: the server's word
      // (§4.8), or what this browser saved when the server cannot say.
      f.declaredCrc = (meta.fileId && (status ? serverFiles.get(meta.fileId)?.crc32c : meta.crc32c)) || null;
      f.declared = Boolean(f.declaredCrc);
      return f;
    });
    await this.hash(this.files.filter((f) => !f.fileUrl));
    for (const f of this.files) {
      if (f.declaredCrc && f.crc32c && f.declaredCrc !== f.crc32c) {
        throw new ApiError(0, 'FILE_CHANGED', `${f.meta.name} is not the file this upload started with (CRC32C ${f.crc32c}, the upload's ${f.declaredCrc}). Choose that file, or discard the interrupted upload.`, {});
      }
    }
    this.status = 'asking what is already uploaded';
    this.changed();
    await this.extendIfNeeded();
    for (const f of this.files) {
      if (!f.fileId || f.fileUrl) continue;
      // §4.5 reconciles with S3, so parts PUT straight to S3 before the
      // reload are listed even though the server never saw them.
      const { parts } = await api.listParts(this.sessionId, f.fileId);
      for (const p of parts) {
        if (p.partNumber <= f.partCount && p.sizeBytes === this.partSize(f, p.partNumber)) {
          f.parts.set(p.partNumber, p.etag);
        }
      }
    }
    const unregistered = this.files.filter((f) => !f.fileId);
    if (unregistered.length) await this.register(unregistered);
    this.changed();
    return this.run();
  }

  /** §4.8, tolerating a server that does not have the route yet. */
  async fetchStatus() {
    try {
      return await api.status(this.sessionId);
    } catch (error) {
      if (error.status === 404 || error.status === 405) {
        this.log(`session status unavailable (${error.code}); resuming from what this browser saved`);
        return null;
      }
      throw error;
    }
  }

  cancel() {
    this.controller.abort();
    const sid = this.sessionId;
    saved.clear();
    return sid ? api.cancel(sid) : Promise.resolve(null);
  }

  track(file, meta) {
    return {
      file, meta, size: meta.size, fileId: null, partCount: 0, parts: new Map(), inFlight: new Map(), urls: new Map(), fileUrl: null, error: null,
      // This browser's CRC32Cs (§4.14): the file's, each part's; whether
      // the server holds a declared one for the file; what finalize said.
      crc32c: null, partCrcs: [], declared: false, verified: null,
    };
  }

  partSize(f, n) {
    return n < f.partCount ? this.partSizeBytes : f.size - this.partSizeBytes * (f.partCount - 1);
  }

  /** Each file's CRC32C and its parts' (§4.14), computed in a Web Worker. */
  async hash(files) {
    this.status = 'checking the files (CRC32C)';
    this.changed();
    for (const f of files) {
      const { crc32c, parts, ms } = await checksumFile(f.file, this.partSizeBytes);
      // Cancel pressed while hashing: register nothing more.
      if (this.controller.signal.aborted) throw Object.assign(new Error('cancelled'), { cancelled: true });
      f.crc32c = crc32c;
      f.partCrcs = parts;
      this.log(`CRC32C of ${f.meta.name}: ${crc32c} (${parts.length} part${parts.length === 1 ? '' : 's'}, ${Math.round(ms)} ms)`);
    }
  }

  /** `partChecksums` for parts `numbers` of `f` (§4.12, §4.14). */
  partChecksums(f, numbers) {
    return numbers.map((partNumber) => ({ partNumber, crc32c: f.partCrcs[partNumber - 1] }));
  }

  /** Every part's number, 1..partCount. */
  static allParts(f) {
    return Array.from({ length: f.partCount }, (_, i) => i + 1);
  }

  /** What the MOC (§4.7 files[]) or the session (§4.8 files) says of each file's CRC32C. */
  takeVerification(stored) {
    for (const f of this.files) {
      const match = (stored ?? []).find((s) => s.fileUrl && s.fileUrl === f.fileUrl);
      if (!match) continue;
      f.verified = Boolean(match.checksumVerified);
      f.storedCrc32c = match.crc32c ?? null;
      if (f.crc32c && match.crc32c && f.crc32c !== match.crc32c) this.log(`${f.meta.name}: S3 holds CRC32C ${match.crc32c}, this browser computed ${f.crc32c}`);
    }
    this.changed();
  }

  async register(files) {
    this.status = 'registering the files';
    this.changed();
    for (let i = 0; i < files.length; i += BATCH) {
      const batch = files.slice(i, i + BATCH);
      // Each file's CRC32C, and every part's, so each URL is signed for its part's (§4.14).
      const { results } = await api.registerBatch(
        this.sessionId,
        batch.map((f) => ({ ...f.meta, partCount: f.partCount, crc32c: f.crc32c, partChecksums: this.partChecksums(f, Upload.allParts(f)) })),
      );
      const failures = [];
      for (const r of results) {
        const f = batch[r.index];
        if (r.error) {
          f.error = r.error.message;
          failures.push({ filename: f.meta.name, reason: r.error.details?.reason ?? r.error.code ?? r.error.type, message: r.error.message });
          continue;
        }
        f.fileId = r.fileId;
        f.declared = true;
        this.takeUrls(f, r.presignedUrls ?? []);
      }
      this.persist();
      if (failures.length) throw new ApiError(400, 'REGISTRATION_FAILED', 'Some files could not be registered.', { files: failures });
    }
  }

  takeUrls(f, presignedUrls) {
    for (const u of presignedUrls) f.urls.set(u.partNumber, { url: u.url, headers: u.headers ?? {}, expiresAt: Date.parse(u.expiresAt) });
  }

  /** A usable URL for part n with its headers; asks for fresh ones (§4.12) when it has none. */
  async urlFor(f, n) {
    const known = f.urls.get(n);
    if (known && known.expiresAt - Date.now() > URL_MARGIN_MS) return known;
    const missing = [];
    for (let p = 1; p <= f.partCount; p++) if (!f.parts.has(p)) missing.push(p);
    if (!f.refreshing) {
      f.refreshing = this.fetchUrls(f, missing.includes(n) ? missing : [n]).finally(() => {
        f.refreshing = null;
      });
    }
    await f.refreshing;
    const fresh = f.urls.get(n);
    if (!fresh) throw new Error(`the server gave no URL for part ${n} of ${f.meta.name}`);
    return fresh;
  }

  async fetchUrls(f, partNumbers) {
    // A file registered without a CRC32C (by an older page) takes none (§4.14: 422).
    const checksums = (numbers) => (f.declared && f.partCrcs.length ? this.partChecksums(f, numbers) : undefined);
    let answer;
    try {
      answer = await api.freshUrls(this.sessionId, f.fileId, partNumbers, checksums(partNumbers));
    } catch (error) {
      if (error.status !== 404 && error.status !== 405) throw error;
      // A server without §4.12: re-registration (§4.2) also hands out fresh
      // URLs for the same upload, for every part.
      const partChecksums = checksums(Upload.allParts(f));
      answer = await api.reRegister(this.sessionId, {
        ...f.meta, fileId: f.fileId, partCount: f.partCount, ...(partChecksums ? { crc32c: f.crc32c, partChecksums } : {}),
      });
    }
    this.takeUrls(f, answer.presignedUrls ?? []);
  }

  async sendPart(f, n) {
    const start = (n - 1) * this.partSizeBytes;
    for (let attempt = 1; ; attempt++) {
      if (this.controller.signal.aborted) throw Object.assign(new Error('cancelled'), { cancelled: true });
      try {
        const target = await this.urlFor(f, n);
        // Each attempt reads its slice afresh: after a BadDigest, what was
        // sent is not what the file holds.
        const body = await partBody(f, n, f.file.slice(start, start + this.partSize(f, n)), attempt);
        this.partsSent++;
        const etag = await putPart(
          target,
          body,
          (loaded) => {
            f.inFlight.set(n, loaded);
            this.changed();
          },
          this.controller.signal,
        );
        f.inFlight.delete(n);
        f.parts.set(n, etag);
        this.changed();
        return;
      } catch (error) {
        f.inFlight.delete(n);
        this.changed();
        if (error.cancelled || error.fatal || error instanceof ApiError || attempt >= PART_ATTEMPTS) throw error;
        // A 403 from S3 is an expired or refused signature: get a new URL.
        if (error.status === 403) f.urls.delete(n);
        // S3 kept what it held and refused the bytes: send this part again
        // at once, through the same URL (its checksum is still the part's).
        if (error.badDigest) {
          this.log(`part ${n} of ${f.meta.name}: ${error.message}; sending it again`);
          continue;
        }
        const backoff = 500 * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
        this.log(`part ${n} of ${f.meta.name}: ${error.message}; retry ${attempt} in ${Math.round(backoff)} ms`);
        await sleep(backoff);
      }
    }
  }

  async completeFile(f) {
    const parts = [...f.parts.entries()].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag }));
    const { fileUrl } = await api.complete(this.sessionId, f.fileId, parts);
    f.fileUrl = fileUrl;
    this.persist();
    this.changed();
  }

  async extendIfNeeded() {
    if (!this.expiresAt || Date.parse(this.expiresAt) - Date.now() > EXTEND_WHEN_LEFT_MS) return;
    try {
      const { expiresAt } = await api.extend(this.sessionId);
      this.expiresAt = expiresAt;
      this.persist();
      this.log(`session extended to ${expiresAt}`);
    } catch (error) {
      // Not fatal: the upload may well finish in time; finalize says if not.
      this.log(`could not extend the session: ${error.code} ${error.message}`);
    }
  }

  /** Uploads every missing part, completes every file, then finalizes. */
  async run() {
    this.status = 'uploading';
    this.changed();
    const timer = setInterval(() => this.extendIfNeeded(), EXTEND_CHECK_MS);
    try {
      const queue = [];
      for (const f of this.files) {
        if (f.fileUrl) continue;
        for (let n = 1; n <= f.partCount; n++) if (!f.parts.has(n)) queue.push({ f, n });
      }
      const completions = [];
      const finishIfDone = (f) => {
        if (!f.fileUrl && !f.completing && f.parts.size === f.partCount) {
          f.completing = this.completeFile(f);
          completions.push(f.completing);
        }
      };
      this.files.forEach(finishIfDone);
      const worker = async () => {
        while (queue.length) {
          const { f, n } = queue.shift();
          await this.sendPart(f, n);
          finishIfDone(f);
        }
      };
      await Promise.all(Array.from({ length: PARALLEL_PARTS }, worker));
      await Promise.all(completions);
      this.status = 'finalizing';
      this.changed();
      const moc = await api.finalize(this.sessionId, this.title);
      this.takeVerification(moc.files);
      saved.clear();
      this.status = 'done';
      this.changed();
      return moc;
    } catch (error) {
      if (!error.cancelled) this.controller.abort();
      throw error;
    } finally {
      clearInterval(timer);
    }
  }
}
