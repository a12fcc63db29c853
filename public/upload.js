// The upload itself: hash each file (CRC32C, in a worker), register it with
// its CRC32C, ask for part URLs just before they are used (signed for each
// part's CRC32C), PUT the parts straight to S3 (a few at a time, each
// retried: a 403 re-signs, SlowDown and network errors back off with jitter,
// offline waits for the network), complete each file with `{}` (S3's parts),
// finalize. It also resumes, on any device: the server lists the caller's
// sessions (§4.15), the files picked again are matched to the registered
// ones by size and CRC32C, and only the missing parts are sent.

import { api, ApiError } from './api.js';
import { checksumFile } from './crc32c.js';

/** Parts in flight at once, over all files: enough to fill a typical uplink. */
export const PARALLEL_PARTS = 4;
/** Attempts per part (network errors aside) before the upload stops with an error. */
const PART_ATTEMPTS = 5;
/**
 * URLs asked for at once per file: the part about to go and the next few, so
 * a URL is signed shortly before its PUT starts (`PRESIGN_TTL_SECONDS` may
 * be seconds), not at registration.
 */
const URL_WINDOW = PARALLEL_PARTS;
/** A URL is replaced before use when less than this much of its life is left (at most a minute). */
const URL_MARGIN_MS = 60_000;
/** How long network failures may go on, offline time excluded, before the upload gives up. */
const NETWORK_PATIENCE_MS = 10 * 60_000;
/** Backoff with full jitter: 0.5 s, 1 s, 2 s, … capped at 15 s, each ±25 %. */
const backoffMs = (attempt) => Math.min(15_000, 500 * 2 ** Math.max(0, attempt - 1)) * (0.75 + Math.random() / 2);
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
 * to the ETag. Rejections say what to do next: `badDigest` (the bytes are
 * not the declared CRC32C: send again), `expired` (403: the URL expired or
 * its signature was refused: re-sign), `slowDown` (503), `network` (no
 * answer at all).
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
        return;
      }
      const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText ?? '')?.[1] ?? '';
      const detail = /<Message>([^<]+)<\/Message>/.exec(xhr.responseText ?? '')?.[1] ?? '';
      // Garage spells it InvalidDigest.
      const badDigest = xhr.status === 400 && /^(BadDigest|InvalidDigest)$/.test(code);
      const what = badDigest
        ? "S3 answered 400 BadDigest (the bytes that arrived do not match the part's CRC32C)"
        : `S3 answered ${xhr.status}${code ? ` ${code}` : ''}${detail ? ` (${detail})` : ''}`;
      reject(Object.assign(new Error(what), { status: xhr.status, badDigest, expired: xhr.status === 403, slowDown: xhr.status === 503 }));
    };
    xhr.onerror = () => reject(Object.assign(new Error('the network failed (or S3 refused the CORS preflight)'), { network: true }));
    xhr.onabort = () => reject(Object.assign(new Error('cancelled'), { cancelled: true }));
    signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}

const cancelled = () => Object.assign(new Error('cancelled'), { cancelled: true });

/** The network as the browser sees it: `navigator.onLine` and its events. */
const network = {
  online: () => navigator.onLine !== false,
  /** Resolves when the browser is back online (at once when it is). */
  back() {
    if (network.online()) return Promise.resolve();
    return new Promise((resolve) => window.addEventListener('online', () => resolve(), { once: true }));
  },
};

/**
 * One upload session. `onChange` is called whenever progress or state moves;
 * the UI reads `files`, `bytesDone()`, `totalBytes()`, `rate()` and `offline`.
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
    /** Bytes PUT to S3, every attempt's, failed ones included: what the upload cost. */
    this.bytesSent = 0;
    this.offline = false;
    this.networkTroubleSince = null;
  }

  // ---- progress -------------------------------------------------------

  totalBytes() {
    return this.files.reduce((sum, f) => sum + f.size, 0);
  }

  /**
   * The parts S3 confirmed, plus what the current attempt of each part in
   * flight has sent: a failed attempt's bytes leave the sum with it, so a
   * retried or resumed part is never counted twice.
   */
  fileBytesDone(f) {
    if (f.fileUrl) return f.size;
    let done = 0;
    for (const n of f.parts.keys()) done += this.partSize(f, n);
    for (const loaded of f.inFlight.values()) done += loaded;
    return Math.min(done, f.size);
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
    return last.at > first.at ? Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at)) : 0;
  }

  changed() {
    this.samples.push({ at: performance.now(), bytes: this.bytesDone() });
    this.onChange(this);
  }

  // ---- persistence ----------------------------------------------------

  /** Which session this browser was uploading: the server (§4.15) knows the rest. */
  persist() {
    saved.store({
      sessionId: this.sessionId,
      title: this.title,
      expiresAt: this.expiresAt,
      files: this.files.map(({ meta, fileId }) => ({ name: meta.name, size: meta.size, category: meta.category, fileId })),
    });
  }

  // ---- the network ----------------------------------------------------

  /**
   * What to do after a request got no answer: wait for the browser to be
   * online again (paused, shown, not counted as an attempt), or, when the
   * browser believes it is online, back off with jitter. Gives up only after
   * NETWORK_PATIENCE_MS of failures while online.
   */
  async networkFailed(error, attempt) {
    // The failed request may be the first sign; the offline event follows.
    await sleep(300);
    if (!network.online()) {
      this.networkTroubleSince = null;
      await this.pauseUntilOnline();
      return;
    }
    this.networkTroubleSince ??= Date.now();
    if (Date.now() - this.networkTroubleSince > NETWORK_PATIENCE_MS) throw error;
    await sleep(backoffMs(attempt));
  }

  async pauseUntilOnline() {
    if (network.online()) return;
    if (!this.offline) {
      this.offline = true;
      this.resumeStatus = this.status;
      this.status = 'paused: offline, it continues by itself when the network is back';
      this.log('offline: the upload is paused');
      this.changed();
    }
    await network.back();
    if (this.offline) {
      this.offline = false;
      this.status = this.resumeStatus ?? 'uploading';
      this.log('online again: the upload continues');
      this.changed();
    }
    if (this.controller.signal.aborted) throw cancelled();
  }

  /**
   * An API call that survives the network: no answer waits for the network
   * (offline) or backs off; 408, 429, 502, 503 and 504 back off with jitter.
   * Anything else is the caller's to handle.
   */
  async call(request) {
    for (let attempt = 1; ; attempt++) {
      if (this.controller.signal.aborted) throw cancelled();
      try {
        const answer = await request();
        this.networkTroubleSince = null;
        return answer;
      } catch (error) {
        if (error.status === 0) {
          this.log(`${error.message}; trying again`);
          await this.networkFailed(error, attempt);
        } else if ([408, 429, 502, 503, 504].includes(error.status) && attempt < PART_ATTEMPTS) {
          await sleep(backoffMs(attempt));
        } else {
          throw error;
        }
      }
    }
  }

  // ---- the flow -------------------------------------------------------

  /** A new upload of `chosen`: [{file, category}]. */
  async start(chosen) {
    this.files = chosen.map(({ file, category }) => this.track(file, describe(file, category)));
    this.status = 'creating the session';
    this.changed();
    const created = await this.call(() => api.createSession(this.files.map((f) => f.meta), this.title || undefined));
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
   * Resumes `view` (a session as §4.8 and §4.15 show it, from this device
   * or another) with the files the user picked again: each is matched to a
   * registered file by size and CRC32C (the name is only a hint), the server
   * holds every match to the registered file before any byte is sent (§4.12,
   * 409 FILE_MISMATCH), and only the parts S3 lacks are sent.
   */
  async resume(view, chosen) {
    this.sessionId = view.sessionId;
    this.partSizeBytes = view.partSizeBytes;
    this.expiresAt = view.expiresAt;
    this.title = this.title || view.title || '';
    if (view.mocId || view.status === 'completed') {
      this.files = view.files.map((s) => Object.assign(this.track(null, { name: s.name, size: s.size, category: s.category }), { fileUrl: s.fileUrl }));
      this.takeVerification(view.files);
      return { alreadyFinalized: true, mocId: view.mocId };
    }
    if (view.status !== 'active') throw sessionEnded(view.status);
    const picked = chosen.map(({ file, category }) => this.track(file, describe(file, category)));
    this.files = picked;
    await this.hash(picked);
    this.files = this.match(view, picked);
    this.persist();
    this.status = 'asking what is already uploaded';
    this.changed();
    await this.extendIfNeeded();
    for (const f of this.files) {
      if (!f.fileId || f.fileUrl) continue;
      // §4.5 reconciles with S3: parts PUT straight to S3 by any device are listed.
      const { parts } = await this.call(() => api.listParts(this.sessionId, f.fileId));
      for (const p of parts) {
        if (p.partNumber <= f.partCount && p.sizeBytes === this.partSize(f, p.partNumber)) f.parts.set(p.partNumber, p.etag);
      }
    }
    // What was uploaded before is not this page's rate.
    this.samples = [];
    // The server's word on each match, before any PUT: a file that is not
    // the registered one is refused here (409 FILE_MISMATCH), with no URL.
    this.status = 'checking the files against the upload';
    this.changed();
    for (const f of this.files) {
      if (f.fileId && !f.fileUrl) await this.fetchUrls(f, this.urlWindow(f, null));
    }
    const unregistered = this.files.filter((f) => !f.fileId);
    if (unregistered.length) await this.register(unregistered);
    this.changed();
    return this.run();
  }

  /**
   * Pairs the session's files with the picked ones. A registered file takes
   * the picked file of its size and CRC32C (its name breaks ties); without
   * one, the picked file of its name is offered to the server, which judges
   * it. A completed file needs no file. A declared file not registered yet
   * takes the picked file of its name and size, and is registered.
   */
  match(view, picked) {
    const free = new Set(picked);
    const take = (f) => (free.delete(f), f);
    const files = [];
    for (const s of view.files) {
      const candidates = [...free];
      const byContent = candidates.filter((p) => p.size === s.size && s.crc32c && p.crc32c === s.crc32c);
      const found = byContent.find((p) => p.meta.name === s.name) ?? byContent[0] ?? (s.status === 'completed' ? null : candidates.find((p) => p.meta.name === s.name));
      let f;
      if (found) {
        f = take(found);
        if (f.meta.name !== s.name) this.log(`${f.meta.name} is ${s.name} of this upload (same size and CRC32C)`);
      } else if (s.status === 'completed') {
        f = this.track(null, { name: s.name, size: s.size, category: s.category });
      } else {
        throw new ApiError(0, 'FILE_NOT_CHOSEN', `Choose ${s.name} (${s.size} bytes) again to resume.`, {});
      }
      f.meta = { ...f.meta, category: s.category, name: s.name, type: s.type ?? f.meta.type };
      Object.assign(f, { fileId: s.fileId, partCount: s.partCount, fileUrl: s.status === 'completed' ? s.fileUrl : null });
      // The server's CRC32C for the file; one registered without has none to compare.
      f.declaredCrc = s.crc32c ?? null;
      f.declared = Boolean(s.crc32c);
      files.push(f);
    }
    const registered = new Set(view.files.map((s) => `${s.category}/${s.name}`));
    for (const d of view.declaredFiles ?? []) {
      if (registered.has(`${d.category}/${d.name}`)) continue;
      const found = [...free].find((p) => p.meta.name === d.name && p.size === d.size);
      if (!found) throw new ApiError(0, 'FILE_NOT_CHOSEN', `Choose ${d.name} (${d.size} bytes) again to resume.`, {});
      take(found).meta.category = d.category;
      found.partCount = Math.max(1, Math.ceil(found.size / this.partSizeBytes));
      files.push(found);
    }
    for (const p of free) this.log(`${p.meta.name} is not part of this upload; left out`);
    return files;
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
      if (this.controller.signal.aborted) throw cancelled();
      f.crc32c = crc32c;
      f.partCrcs = parts;
      this.log(`CRC32C of ${f.meta.name}: ${crc32c} (${parts.length} part${parts.length === 1 ? '' : 's'}, ${Math.round(ms)} ms)`);
    }
  }

  /** `partChecksums` for parts `numbers` of `f` (§4.12, §4.14). */
  partChecksums(f, numbers) {
    return numbers.filter((n) => f.partCrcs[n - 1]).map((partNumber) => ({ partNumber, crc32c: f.partCrcs[partNumber - 1] }));
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

  /** Registers `files` with their CRC32C; no URLs yet (they are asked for just before use). */
  async register(files) {
    this.status = 'registering the files';
    this.changed();
    for (let i = 0; i < files.length; i += BATCH) {
      const batch = files.slice(i, i + BATCH);
      const { results } = await this.call(() => api.registerBatch(this.sessionId, batch.map((f) => ({ ...f.meta, crc32c: f.crc32c }))));
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
      }
      this.persist();
      if (failures.length) throw new ApiError(400, 'REGISTRATION_FAILED', 'Some files could not be registered.', { files: failures });
    }
  }

  takeUrls(f, presignedUrls) {
    const now = Date.now();
    for (const u of presignedUrls) {
      const expiresAt = Date.parse(u.expiresAt);
      // The margin is a share of the URL's life: a 15-second URL is not stale at birth.
      const margin = Math.min(URL_MARGIN_MS, Math.max(0, expiresAt - now) / 3);
      f.urls.set(u.partNumber, { url: u.url, headers: u.headers ?? {}, staleAt: expiresAt - margin });
    }
  }

  /** Part `n` (or, with null, the first missing part) and the next missing ones without a usable URL. */
  urlWindow(f, n) {
    const window = n === null ? [] : [n];
    for (let p = 1; p <= f.partCount && window.length < URL_WINDOW; p++) {
      if (p === n || f.parts.has(p) || f.inFlight.has(p)) continue;
      const known = f.urls.get(p);
      if (!known || known.staleAt <= Date.now()) window.push(p);
    }
    return window.sort((a, b) => a - b);
  }

  /** A usable URL for part n with its headers, asked for (§4.12) with the next few when there is none. */
  async urlFor(f, n) {
    for (;;) {
      const known = f.urls.get(n);
      if (known && known.staleAt > Date.now()) return known;
      if (!f.refreshing) {
        f.refreshing = this.fetchUrls(f, this.urlWindow(f, n)).finally(() => {
          f.refreshing = null;
        });
        await f.refreshing;
        const fresh = f.urls.get(n);
        if (!fresh) throw new Error(`the server gave no URL for part ${n} of ${f.meta.name}`);
        return fresh;
      }
      // Another part's request is under way; it may include this part.
      await f.refreshing.catch(() => {});
    }
  }

  /**
   * Fresh URLs (§4.12) for `partNumbers` (none: every part S3 lacks), sent
   * with the file's size and CRC32C so that a file other than the
   * registered one is refused (409 FILE_MISMATCH) before any byte is sent.
   */
  async fetchUrls(f, partNumbers) {
    const ask = { size: f.size };
    // A file registered without a CRC32C (by an older page) takes none (§4.14: 422).
    if (f.declared && f.crc32c) ask.crc32c = f.crc32c;
    if (partNumbers.length) {
      ask.partNumbers = partNumbers;
      if (ask.crc32c) ask.partChecksums = this.partChecksums(f, partNumbers);
    }
    const answer = await this.call(() => api.freshUrls(this.sessionId, f.fileId, ask));
    this.takeUrls(f, answer.presignedUrls ?? []);
  }

  /**
   * Sends part `n` until S3 holds it: 400 BadDigest sends it again at once,
   * 403 (an expired URL) re-signs and sends again at once, once; 503
   * SlowDown and other failures back off with jitter; no answer waits for
   * the network without spending an attempt.
   */
  async sendPart(f, n) {
    const start = (n - 1) * this.partSizeBytes;
    let reSigned = false;
    for (let attempt = 1; ; attempt++) {
      if (this.controller.signal.aborted) throw cancelled();
      try {
        await this.pauseUntilOnline();
        const target = await this.urlFor(f, n);
        // Each attempt reads its slice afresh: after a BadDigest, what was
        // sent is not what the file holds.
        const body = await partBody(f, n, f.file.slice(start, start + this.partSize(f, n)), attempt);
        this.partsSent++;
        const etag = await putPart(target, body, (loaded) => {
          f.inFlight.set(n, loaded);
          this.changed();
        }, this.controller.signal);
        this.bytesSent += body.size;
        f.inFlight.delete(n);
        f.parts.set(n, etag);
        this.networkTroubleSince = null;
        this.changed();
        return;
      } catch (error) {
        // What this attempt sent is not counted as done any more: it is sent again.
        this.bytesSent += f.inFlight.get(n) ?? 0;
        f.inFlight.delete(n);
        this.changed();
        if (error.cancelled || error.fatal || error instanceof ApiError) throw error;
        if (error.network) {
          this.log(`part ${n} of ${f.meta.name}: ${error.message}`);
          await this.networkFailed(error, attempt);
          // The bytes may have arrived and only the answer was lost: S3's
          // word (§4.5) before sending the part again.
          if (await this.s3Holds(f, n)) return;
          attempt--;
          continue;
        }
        if (attempt >= PART_ATTEMPTS) throw error;
        if (error.expired) {
          // The URL expired (or its signature was refused): get a new one.
          f.urls.delete(n);
          this.log(`part ${n} of ${f.meta.name}: ${error.message}; re-signing it`);
          if (!reSigned) {
            reSigned = true;
            continue;
          }
        }
        // S3 kept what it held and refused the bytes: send this part again
        // at once, through the same URL (its checksum is still the part's).
        if (error.badDigest) {
          this.log(`part ${n} of ${f.meta.name}: ${error.message}; sending it again`);
          continue;
        }
        const backoff = backoffMs(attempt);
        this.log(`part ${n} of ${f.meta.name}: ${error.message}; retry ${attempt} in ${Math.round(backoff)} ms`);
        await sleep(backoff);
      }
    }
  }

  /**
   * Whether S3 holds part `n` of `f` at its size (§4.5, reconciled with S3;
   * one listing serves every part asking at once). Its URL was signed for
   * the part's CRC32C and the file is the registered one (§4.12), so a part
   * S3 holds is this part's bytes.
   */
  async s3Holds(f, n) {
    f.listing ??= this.call(() => api.listParts(this.sessionId, f.fileId)).finally(() => {
      f.listing = null;
    });
    const { parts } = await f.listing;
    const held = parts.find((p) => p.partNumber === n && p.sizeBytes === this.partSize(f, n));
    if (!held) return false;
    f.parts.set(n, held.etag);
    this.log(`part ${n} of ${f.meta.name}: S3 holds it (only the answer was lost); not sent again`);
    this.changed();
    return true;
  }

  /** §4.6 with `{}`: the server completes from the parts S3 holds; no ETags kept here are needed. */
  async completeFile(f) {
    const { fileUrl } = await this.call(() => api.complete(this.sessionId, f.fileId));
    f.fileUrl = fileUrl;
    this.changed();
  }

  async extendIfNeeded() {
    if (!this.expiresAt || Date.parse(this.expiresAt) - Date.now() > EXTEND_WHEN_LEFT_MS) return;
    if (!network.online()) return;
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
      const moc = await this.call(() => api.finalize(this.sessionId, this.title));
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

/**
 * A session that can no longer take parts, in the frontend's vocabulary: an
 * expired session is EXPIRED_SESSION, any other end a CONFLICT (§0).
 */
export function sessionEnded(status) {
  const [httpStatus, code] = status === 'expired' ? [410, 'EXPIRED_SESSION'] : [409, 'CONFLICT'];
  return new ApiError(httpStatus, code, `This upload session is ${status}.`, { reason: 'SESSION_' + String(status).toUpperCase() });
}
