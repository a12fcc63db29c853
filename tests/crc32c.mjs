// CRC32C for the checks, written independently of the code they check (the
// page's public/crc32c.js is slicing-by-8 with CRC combination, the server's
// and the embedded S3's are Rust crates): the plain byte-at-a-time table.
//
// As a module: `crc32cBase64(bytes)`, S3's spelling (base64 of the four
// big-endian bytes). As a command, for scripts:
//   node tests/crc32c.mjs FILE PART_SIZE
// prints `{"crc32c": "…", "partChecksums": [{"partNumber": 1, "crc32c": "…"}, …]}`,
// the registration fields of docs/contract.md §4.14.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c;
});

/** The CRC32C of `bytes` (a Uint8Array) in S3's base64. */
export function crc32cBase64(bytes) {
  let c = -1;
  for (const byte of bytes) c = TABLE[(c ^ byte) & 255] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(~c >>> 0);
  return out.toString('base64');
}

// The standard check value: CRC32C("123456789") = E3069283.
if (crc32cBase64(Buffer.from('123456789')) !== '4waSgw==') throw new Error('tests/crc32c.mjs fails the check value E3069283');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, partSizeArg] = process.argv.slice(2);
  const partSize = Number(partSizeArg);
  if (!file || !(partSize > 0)) {
    console.error('usage: node tests/crc32c.mjs FILE PART_SIZE');
    process.exit(2);
  }
  const bytes = readFileSync(file);
  const partChecksums = [];
  for (let start = 0; start < bytes.length || start === 0; start += partSize) {
    partChecksums.push({ partNumber: partChecksums.length + 1, crc32c: crc32cBase64(bytes.subarray(start, start + partSize)) });
  }
  console.log(JSON.stringify({ crc32c: crc32cBase64(bytes), partChecksums }));
}
