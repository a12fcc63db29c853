// The page's hashing worker (crc32c.js, checksumFile): reads a File in
// slices and computes its CRC32Cs off the main thread, so progress bars and
// buttons stay live while a 50 MB PDF is hashed.

import { checksumBlob } from './crc32c.js';

self.onmessage = async ({ data: { id, blob, partSize } }) => {
  const started = performance.now();
  try {
    const result = await checksumBlob(blob, partSize);
    self.postMessage({ id, ...result, ms: performance.now() - started });
  } catch (error) {
    self.postMessage({ id, error: String(error?.message ?? error) });
  }
};
