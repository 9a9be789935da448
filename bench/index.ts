/**
 * `npm run bench`: benchmarks that compare side by side in one run and print sizes and ratios.
 * Performance is measured here, never by timed assertions in tests.
 */
import { hashOverhead } from './hash-overhead.js';

const sizeMiB = Number(process.env.BENCH_HASH_MIB ?? 512);

console.log('Benchmark: SHA-256 in the streaming pass');
console.log(`  compares: (a) streamed read of a ${sizeMiB} MiB file, (b) the same read hashed with SHA-256`);
const r = await hashOverhead(sizeMiB);
const mibps = (ms: number) => (r.sizeMiB / (ms / 1000)).toFixed(0);
console.log(
  `  (a) plain read   ${r.plainMs.toFixed(0).padStart(7)} ms  ${mibps(r.plainMs).padStart(6)} MiB/s`,
);
console.log(
  `  (b) read+sha256  ${r.hashedMs.toFixed(0).padStart(7)} ms  ${mibps(r.hashedMs).padStart(6)} MiB/s`,
);
console.log(`  ratio b/a = ${r.ratio.toFixed(2)}  (best of 3 interleaved rounds)`);
