// What the client sends with every upload so S3 verifies it end to end
// (docs/contract.md §4.14): the file's CRC32C at registration, each part's
// CRC32C so its presigned URL is signed for it, and on each part's PUT the
// headers that URL was signed for (`x-amz-checksum-crc32c` among them), so
// S3 answers 400 BadDigest to bytes that are not the file's.
import type { components } from "./schema.js";

export type PresignedPartUrl = components["schemas"]["PresignedPartUrl"];
export type PartChecksum = components["schemas"]["PartChecksum"];

/** CRC32C (Castagnoli, reflected polynomial 0x82F63B78), a byte at a time. */
const TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c;
});

/** The CRC32C of `bytes`, continued from `crc` (0 to start). */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc;
  for (const byte of bytes) c = (TABLE[(c ^ byte) & 255] ?? 0) ^ (c >>> 8);
  return ~c >>> 0;
}

/** S3's spelling: base64 of the four big-endian bytes ("yZRlqg=="). */
export function crc32cBase64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc);
  return bytes.toString("base64");
}

export interface FileChecksums {
  /** The whole file's, for `crc32c` at registration. */
  crc32c: string;
  /** Every part's, for `partChecksums` at registration or with fresh URLs (§4.12). */
  partChecksums: PartChecksum[];
}

/** The checksums to register `bytes` with, in parts of `partSize` bytes. */
export function checksums(bytes: Uint8Array, partSize: number): FileChecksums {
  const partChecksums: PartChecksum[] = [];
  for (let start = 0, partNumber = 1; start < bytes.byteLength || partNumber === 1; start += partSize, partNumber++) {
    partChecksums.push({ partNumber, crc32c: crc32cBase64(crc32c(bytes.subarray(start, start + partSize))) });
  }
  return { crc32c: crc32cBase64(crc32c(bytes)), partChecksums };
}

/**
 * PUTs one part straight to S3 through its presigned URL, with every header
 * the URL was signed for but `Content-Length` (fetch sets it from the body,
 * and a browser refuses to set it by hand). Answers S3's response: 200 with
 * the ETag, or 400 BadDigest when the body is not the part's declared CRC32C
 * (S3 keeps the part it held; send this part again).
 */
export function putPart(url: PresignedPartUrl, body: Uint8Array<ArrayBuffer>): Promise<Response> {
  const headers = Object.fromEntries(
    Object.entries(url.headers).filter(([name]) => name.toLowerCase() !== "content-length"),
  );
  return fetch(url.url, { method: "PUT", headers, body });
}

/** What happened to one part: S3's status for each PUT, in order, and the ETag it kept. */
export interface SentPart {
  etag: string;
  statuses: number[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Backoff with jitter: 0.5 s, 1 s, 2 s, … capped at 15 s, each ±25 %. */
const backoffMs = (attempt: number) => Math.min(15_000, 500 * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2);

/**
 * Sends one part through a URL asked for just before its PUT (`sign`, the
 * fresh-URLs route, docs/contract.md §4.12), not one held since
 * registration: URLs may live only seconds (`PRESIGN_TTL_SECONDS`). A 403
 * (the URL expired: `AccessDenied`, "Request has expired") is signed afresh
 * and sent again at once, once; 503 SlowDown and network errors back off
 * with jitter (and a URL that expired meanwhile is signed afresh); a 400
 * BadDigest is sent again (S3 kept the part it held).
 */
export async function sendPart(
  sign: () => Promise<PresignedPartUrl>,
  body: Uint8Array<ArrayBuffer>,
  attempts = 5,
): Promise<SentPart> {
  const statuses: number[] = [];
  let url = await sign();
  let reSigned = false;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let response: Response;
    try {
      response = await putPart(url, body);
    } catch {
      // No answer: the network, or S3 closing the connection as it refused
      // the request before reading the body (an expired URL can end so).
      statuses.push(0);
      await sleep(backoffMs(attempt));
      if (Date.parse(url.expiresAt) <= Date.now()) url = await sign();
      continue;
    }
    statuses.push(response.status);
    const text = await response.text();
    const etag = response.headers.get("etag");
    if (response.ok && etag) return { etag, statuses };
    if (response.status === 403) {
      url = await sign();
      if (!reSigned) {
        reSigned = true;
        continue;
      }
    } else if (response.status === 400 && /<Code>(BadDigest|InvalidDigest)<\/Code>/.test(text)) {
      continue;
    } else if (response.status !== 503) {
      throw new Error(`S3 answered ${response.status}: ${text}`);
    }
    await sleep(backoffMs(attempt));
  }
  throw new Error(`part not stored after ${attempts} attempts (S3 answered ${statuses.join(", ")})`);
}
