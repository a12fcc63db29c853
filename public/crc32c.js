// CRC32C (Castagnoli), the checksum S3 checks a part against and stores for
// a whole object (docs/contract.md §4.14), computed in the browser without a
// dependency: the page is served as static files.
//
// - `crc32cUpdate` is table-driven, slicing-by-8: eight bytes per step
//   through eight 256-entry tables, several times faster in V8 than a byte
//   at a time (the byte loop is kept for the tail).
// - `crc32cCombine` gives CRC(A‖B) from CRC(A), CRC(B) and |B| (zlib's
//   crc32_combine, in GF(2) polynomial arithmetic), so one pass over the
//   file yields every part's CRC32C and the whole object's.
// - `checksumBlob` streams a Blob in slices, never holding more than two
//   chunks; `checksumFile` runs it in a Web Worker (checksum-worker.js) so
//   the page stays responsive while a 50 MB PDF is read and hashed.

/** The reflected Castagnoli polynomial. */
const POLY = 0x82f63b78;

/** Eight tables of 256 entries, table t at offset 256·t. */
const TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 255];
    }
  }
  return t;
})();

/** The CRC32C of `bytes` (a Uint8Array) continued from `crc` (0 to start). */
export function crc32cUpdate(crc, bytes) {
  const t = TABLES;
  const n = bytes.length;
  let c = ~crc;
  let i = 0;
  for (const end = n - 7; i < end; i += 8) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t[1792 + (c & 255)] ^ t[1536 + ((c >>> 8) & 255)] ^ t[1280 + ((c >>> 16) & 255)] ^ t[1024 + (c >>> 24)]
      ^ t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}

/** a·b modulo the polynomial; `a` must not be 0 (callers pass powers of x). */
function multModP(a, b) {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0..31. */
const X2N = (() => {
  const table = new Uint32Array(32);
  table[0] = 0x40000000; // x^1
  for (let k = 1; k < 32; k++) table[k] = multModP(table[k - 1], table[k - 1]);
  return table;
})();

/** x^(n·2^k) modulo the polynomial. */
function x2nModP(n, k) {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31], p);
    n = Math.floor(n / 2); // not >>: files may pass 2 GiB
    k++;
  }
  return p;
}

/** CRC32C(A‖B) from crcA = CRC32C(A), crcB = CRC32C(B) and B's length in bytes. */
export function crc32cCombine(crcA, crcB, lengthB) {
  return (multModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}

/** S3's spelling: the base64 of the four big-endian bytes ("yZRlqg=="). */
export function crc32cBase64(crc) {
  return btoa(String.fromCharCode(crc >>> 24, (crc >>> 16) & 255, (crc >>> 8) & 255, crc & 255));
}

/** Bytes read and hashed per step: large enough to amortize each read. */
const CHUNK = 4 * 1024 * 1024;

/**
 * Streams `blob` once: `{crc32c, parts}`, the whole object's CRC32C and
 * each part's (parts of `partSize` bytes, the last one shorter), all in S3's
 * base64. The next chunk is read while the current one is hashed.
 */
export async function checksumBlob(blob, partSize) {
  const chunks = [];
  for (let partStart = 0; ; partStart += partSize) {
    const partEnd = Math.min(partStart + partSize, blob.size);
    for (let at = partStart; ; at += CHUNK) {
      const end = Math.min(at + CHUNK, partEnd);
      chunks.push({ start: at, end, lastOfPart: end === partEnd });
      if (end === partEnd) break;
    }
    if (partEnd >= blob.size) break;
  }
  const read = (chunk) => blob.slice(chunk.start, chunk.end).arrayBuffer();
  const parts = [];
  let whole = 0;
  let crc = 0;
  let partLength = 0;
  let next = read(chunks[0]);
  for (let i = 0; i < chunks.length; i++) {
    const buffer = await next;
    if (i + 1 < chunks.length) next = read(chunks[i + 1]);
    crc = crc32cUpdate(crc, new Uint8Array(buffer));
    partLength += buffer.byteLength;
    if (chunks[i].lastOfPart) {
      parts.push(crc32cBase64(crc));
      whole = crc32cCombine(whole, crc, partLength);
      crc = 0;
      partLength = 0;
    }
  }
  return { crc32c: crc32cBase64(whole), parts };
}

let worker = null;
let nextId = 1;
const waiting = new Map();

/** The one hashing worker of the page, started on first use. */
function hashingWorker() {
  if (worker) return worker;
  worker = new Worker(new URL('./checksum-worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = ({ data }) => {
    const job = waiting.get(data.id);
    waiting.delete(data.id);
    if (data.error) job?.reject(new Error(`CRC32C of ${job.name}: ${data.error}`));
    else job?.resolve(data);
  };
  worker.onerror = (event) => {
    // A worker that cannot start (a browser without module workers) fails
    // every waiting job; checksumFile then hashes on this thread instead.
    event.preventDefault();
    for (const job of waiting.values()) job.reject(Object.assign(new Error(event.message || 'the hashing worker failed'), { workerFailed: true }));
    waiting.clear();
    worker = null;
  };
  return worker;
}

/**
 * `{crc32c, parts, ms}` of a File or Blob, computed in a Web Worker. Falls
 * back to this thread (in 4 MiB steps, so it still yields between reads)
 * only when the browser cannot run the worker.
 */
export async function checksumFile(file, partSize) {
  try {
    return await new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject, name: file.name ?? 'blob' });
      hashingWorker().postMessage({ id, blob: file, partSize });
    });
  } catch (error) {
    if (!error.workerFailed) throw error;
    const started = performance.now();
    return { ...(await checksumBlob(file, partSize)), ms: performance.now() - started };
  }
}
