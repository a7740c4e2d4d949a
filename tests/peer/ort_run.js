#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime (onnxruntime-node) on inputs stored as
// numpy .npy files, the peer the vtaserve tests compare against.
//
//   node ort_run.js model.onnx in.npy out.npy [--threads N]
//       Runs once; writes the output to out.npy, or every output to
//       out.<name>.npy when the model has several.
//   node ort_run.js model.onnx --input-list inputs.txt --output-dir DIR
//       One input .npy path per line; writes DIR/<input stem>.npy (or
//       DIR/<input stem>.<name>.npy per output) in a single process.
//   node ort_run.js model.onnx in.npy [out.npy] --time N [--warmup W]
//       Times N runs after W warm-up runs (default 3; with --warmup-ms M, also
//       at least M ms of them) and prints the median
//       (and min, mean) in microseconds as one JSON line on stdout.
// `in.npy` may be the word "random": a deterministic pseudo-random input of
// the model's input shape and type. Inputs: float32, uint8 or int8 (also
// int32, int64); the model must have exactly one input. Exit code 1 with a
// message on stderr on any error.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');  // eslint-disable-line

// ---- .npy reading and writing (format versions 1.0, 2.0 and 3.0) ----

const NPY_TYPES = {
  // descr -> [onnxruntime type, TypedArray, bytes per element]
  '<f4': ['float32', Float32Array, 4],
  '|u1': ['uint8', Uint8Array, 1],
  '<u1': ['uint8', Uint8Array, 1],
  '|i1': ['int8', Int8Array, 1],
  '<i1': ['int8', Int8Array, 1],
  '<i4': ['int32', Int32Array, 4],
  '<i8': ['int64', BigInt64Array, 8],
};
const ORT_TO_DESCR = {
  float32: '<f4', uint8: '|u1', int8: '|i1', int32: '<i4', int64: '<i8',
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  const magic = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);  // \x93NUMPY
  if (buf.length < 10 || !buf.subarray(0, 6).equals(magic)) {
    throw new Error(`${file}: not a .npy file`);
  }
  const major = buf[6];
  let headerLen, offset;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = buf.readUInt32LE(8);
    offset = 12;
  } else {
    throw new Error(`${file}: unsupported .npy version ${major}`);
  }
  const header = buf.subarray(offset, offset + headerLen).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) {
    throw new Error(`${file}: malformed .npy header: ${header.trim()}`);
  }
  if (fortran[1] === 'True') {
    throw new Error(`${file}: fortran_order arrays are not supported`);
  }
  const type = NPY_TYPES[descr[1]];
  if (!type) throw new Error(`${file}: unsupported dtype ${descr[1]}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length)
      .map((s) => Number.parseInt(s, 10));
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`${file}: bad shape (${shape[1]})`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const dataStart = offset + headerLen;
  const byteLen = count * type[2];
  if (buf.length - dataStart !== byteLen) {
    throw new Error(`${file}: expected ${byteLen} data bytes, found ` +
                    `${buf.length - dataStart}`);
  }
  // Copy into an aligned buffer of its own.
  const bytes = new Uint8Array(byteLen);
  bytes.set(buf.subarray(dataStart, dataStart + byteLen));
  const data = new type[1](bytes.buffer, 0, count);
  return {type: type[0], data, dims};
}

function writeNpy(file, tensor) {
  const descr = ORT_TO_DESCR[tensor.type];
  if (!descr) throw new Error(`cannot write output of type ${tensor.type}`);
  const dims = Array.from(tensor.dims, Number);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, ` +
               `'shape': ${shape}, }`;
  // Pad so that magic + version + length + header is a multiple of 64.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(prefix);
  prefix.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'),
                                        body]));
}

// ---- arguments ----

function parseArgs(argv) {
  const opts = {positional: [], threads: 1, time: 0, warmup: 3, warmupMs: 0,
                inputList: null, outputDir: null};
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const intValue = (min) => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) {
        throw new Error(`${a}: expected an integer >= ${min}, got '${v}'`);
      }
      return n;
    };
    if (a === '--threads') opts.threads = intValue(1);
    else if (a === '--time') opts.time = intValue(1);
    else if (a === '--warmup') opts.warmup = intValue(0);
    else if (a === '--warmup-ms') opts.warmupMs = intValue(0);
    else if (a === '--input-list') opts.inputList = value();
    else if (a === '--output-dir') opts.outputDir = value();
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.positional.push(a);
  }
  return opts;
}

// ---- running ----

function randomInput(session) {
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  if (!meta || !meta.isTensor || !meta.shape) {
    throw new Error('cannot make a random input: no input metadata');
  }
  const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const count = dims.reduce((a, b) => a * b, 1);
  let state = 12345;
  const next = () => {  // LCG, deterministic
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  };
  let data;
  switch (meta.type) {
    case 'float32':
      data = Float32Array.from({length: count}, () => next() * 4 - 2);
      break;
    case 'uint8':
      data = Uint8Array.from({length: count}, () => Math.floor(next() * 256));
      break;
    case 'int8':
      data = Int8Array.from({length: count},
                            () => Math.floor(next() * 256) - 128);
      break;
    default:
      throw new Error(`cannot make a random ${meta.type} input`);
  }
  return {type: meta.type, data, dims};
}

function toFeeds(session, input) {
  return {[session.inputNames[0]]: new ort.Tensor(input.type, input.data,
                                                  input.dims)};
}

function outputPaths(session, base) {
  // base: "dir/out.npy" -> one output: that; several: dir/out.<name>.npy.
  if (session.outputNames.length === 1) return [base];
  const stem = base.endsWith('.npy') ? base.slice(0, -4) : base;
  return session.outputNames.map((n) =>
    `${stem}.${n.replace(/[^A-Za-z0-9_.-]/g, '_')}.npy`);
}

async function runOnce(session, input, outBase) {
  const results = await session.run(toFeeds(session, input));
  const paths = outputPaths(session, outBase);
  session.outputNames.forEach((name, i) => writeNpy(paths[i], results[name]));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [modelPath, inPath, outPath] = opts.positional;
  if (!modelPath) {
    throw new Error('usage: ort_run.js model.onnx in.npy out.npy ' +
                    '[--threads N] | --input-list F --output-dir D | ' +
                    '--time N');
  }
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  if (session.inputNames.length !== 1) {
    throw new Error(`the model has ${session.inputNames.length} inputs; ` +
                    'ort_run.js feeds exactly one');
  }
  const load = (p) => (p === 'random' ? randomInput(session) : readNpy(p));

  if (opts.inputList) {
    if (!opts.outputDir) throw new Error('--input-list needs --output-dir');
    fs.mkdirSync(opts.outputDir, {recursive: true});
    const lines = fs.readFileSync(opts.inputList, 'utf8').split('\n')
        .map((l) => l.trim()).filter((l) => l.length && !l.startsWith('#'));
    for (const line of lines) {
      const input = readNpy(line);
      const stem = path.basename(line).replace(/\.npy$/, '');
      await runOnce(session, input, path.join(opts.outputDir, `${stem}.npy`));
    }
    return;
  }
  if (!inPath) throw new Error('missing input .npy');
  const input = load(inPath);
  if (opts.time > 0) {
    const feeds = toFeeds(session, input);
    // At least --warmup runs and --warmup-ms milliseconds of them.
    const w0 = process.hrtime.bigint();
    for (let i = 0; i < opts.warmup ||
         Number(process.hrtime.bigint() - w0) / 1e6 < opts.warmupMs; ++i) {
      await session.run(feeds);
    }
    const times = [];
    for (let i = 0; i < opts.time; ++i) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const sorted = times.slice().sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const median = sorted.length % 2 ? sorted[mid]
                                     : (sorted[mid - 1] + sorted[mid]) / 2;
    console.log(JSON.stringify({
      model: path.basename(modelPath),
      runtime: `onnxruntime-node ${require('onnxruntime-node/package.json').version}`,
      threads: opts.threads,
      runs: opts.time,
      median_us: Math.round(median * 10) / 10,
      min_us: Math.round(sorted[0] * 10) / 10,
      mean_us: Math.round(times.reduce((a, b) => a + b, 0) / times.length *
                          10) / 10,
    }));
    if (outPath) await runOnce(session, input, outPath);
    return;
  }
  if (!outPath) throw new Error('missing output .npy');
  await runOnce(session, input, outPath);
}

module.exports = {readNpy, writeNpy};

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`ort_run.js: ${e && e.message ? e.message : e}\n`);
    process.exitCode = 1;
  });
}
