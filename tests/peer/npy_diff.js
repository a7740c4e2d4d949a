#!/usr/bin/env node
// Compares two .npy arrays of the same shape and prints one JSON line:
// max and mean absolute difference, cosine similarity, whether the argmax
// agrees, and (for integer data) how many elements differ.
//   node npy_diff.js a.npy b.npy
// Exit code 1 on a read error or a shape mismatch.
'use strict';

const {readNpy} = require('./ort_run.js');

function main() {
  const [aPath, bPath] = process.argv.slice(2);
  if (!aPath || !bPath) throw new Error('usage: npy_diff.js a.npy b.npy');
  const a = readNpy(aPath);
  const b = readNpy(bPath);
  if (a.dims.join(',') !== b.dims.join(',')) {
    throw new Error(`shape mismatch: [${a.dims}] vs [${b.dims}]`);
  }
  let maxAbs = 0, sumAbs = 0, dot = 0, na = 0, nb = 0, differing = 0;
  let argA = 0, argB = 0;
  const n = a.data.length;
  for (let i = 0; i < n; ++i) {
    const x = Number(a.data[i]), y = Number(b.data[i]);
    const d = Math.abs(x - y);
    maxAbs = Math.max(maxAbs, d);
    sumAbs += d;
    if (x !== y) ++differing;
    dot += x * y;
    na += x * x;
    nb += y * y;
    if (x > Number(a.data[argA])) argA = i;
    if (y > Number(b.data[argB])) argB = i;
  }
  console.log(JSON.stringify({
    elements: n,
    max_abs_diff: maxAbs,
    mean_abs_diff: n ? sumAbs / n : 0,
    differing,
    cosine: na && nb ? dot / Math.sqrt(na * nb) : (na === nb ? 1 : 0),
    argmax_a: argA,
    argmax_b: argB,
  }));
}

try {
  main();
} catch (e) {
  process.stderr.write(`npy_diff.js: ${e.message}\n`);
  process.exitCode = 1;
}
