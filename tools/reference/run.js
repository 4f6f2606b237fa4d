#!/usr/bin/env node
// Reference runner: the OFFICIAL Basic Pitch JS implementation (@spotify/basic-pitch 1.0.1 on tfjs 3.21)
// run on one WAV clip, writing the posteriorgrams (.npy) and note events (JSON) that wtt's engine is
// tested against.  See docs/reference.md.
//
//   node run.js --backend cpu|wasm --in clip.wav --out DIR [--preset python|js|both] [--no-notes]
//               [--model DIR]
//
// Nothing here touches the network: the model comes from models/basic-pitch/ (checked against its
// SHA256SUMS) and the wasm binaries from node_modules.
'use strict';

const T0 = process.hrtime.bigint();
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const now = () => Number(process.hrtime.bigint() - T0) / 1e9;

// tfjs-backend-cpu prints a banner recommending tfjs-node on its first use in Node; drop just that.
const consoleWarn = console.warn;
console.warn = (...a) => {
  if (typeof a[0] === 'string' && a[0].includes('looks like you are running TensorFlow.js in Node.js')) return;
  consoleWarn(...a);
};

const SAMPLE_RATE = 22050;
// Post-processing presets. All use the official outputToNotesPoly with
// onsetThresh=0.5, frameThresh=0.3, inferOnsets=true, maxFreq=null, minFreq=null, melodiaTrick=true
// (energyTolerance left at its default 11). They differ only in minNoteLen (frames):
//   python: the Python CLI's minimum_note_length 127.70 ms -> int(round(0.1277 * 22050 / 256)) = 11
//   js:     the JS library's default minNoteLen = 5
const PRESETS = {
  python: { onsetThresh: 0.5, frameThresh: 0.3, minNoteLen: Math.round((127.7 / 1000) * (SAMPLE_RATE / 256)),
            inferOnsets: true, maxFreq: null, minFreq: null, melodiaTrick: true },
  js: { onsetThresh: 0.5, frameThresh: 0.3, minNoteLen: 5,
        inferOnsets: true, maxFreq: null, minFreq: null, melodiaTrick: true },
};
if (PRESETS.python.minNoteLen !== 11) throw new Error('python preset minNoteLen should be 11');

function die(msg) {
  process.stderr.write(`run.js: ${msg}\n`);
  process.exit(2);
}

function usage() {
  return 'usage: node run.js --backend cpu|wasm --in clip.wav --out DIR [--preset python|js|both] ' +
         '[--no-notes] [--model DIR]';
}

function parseArgs(argv) {
  const o = { backend: null, in: null, out: null, preset: 'both', notes: true,
              model: path.resolve(__dirname, '../../models/basic-pitch') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value\n${usage()}`);
      return argv[++i];
    };
    switch (a) {
      case '--backend': o.backend = val(); break;
      case '--in': o.in = val(); break;
      case '--out': o.out = val(); break;
      case '--preset': o.preset = val(); break;
      case '--model': o.model = val(); break;
      case '--no-notes': o.notes = false; break;
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0); break;
      default: die(`unknown argument '${a}'\n${usage()}`);
    }
  }
  if (!['cpu', 'wasm'].includes(o.backend)) die(`--backend must be cpu or wasm\n${usage()}`);
  if (!o.in) die(`--in is required\n${usage()}`);
  if (!o.out) die(`--out is required\n${usage()}`);
  if (!['python', 'js', 'both'].includes(o.preset)) die(`--preset must be python, js or both`);
  return o;
}

// ---------------------------------------------------------------------------------------------
// WAV reader: RIFF/WAVE, mono, 22050 Hz, 16-bit integer PCM or 32/64-bit IEEE float
// (WAVE_FORMAT_EXTENSIBLE with those subformats is accepted too). int16 -> x / 32768.
function readWav(file) {
  const buf = fs.readFileSync(file);
  const bad = (m) => { throw new Error(`${file}: ${m}`); };
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    bad('not a RIFF/WAVE file');
  }
  let fmt = null;
  let data = null;
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (body + size > buf.length) {
      bad(`chunk '${id}' claims ${size} bytes but only ${buf.length - body} remain (truncated file?)`);
    }
    if (id === 'fmt ') {
      if (size < 16) bad('fmt chunk too short');
      let format = buf.readUInt16LE(body);
      if (format === 0xfffe && size >= 40) format = buf.readUInt16LE(body + 24); // extensible: subformat GUID
      fmt = { format, channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4),
              blockAlign: buf.readUInt16LE(body + 12), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      data = buf.subarray(body, body + size);
    }
    off = body + size + (size & 1);
  }
  if (!fmt) bad('no fmt chunk');
  if (!data) bad('no data chunk');
  if (fmt.channels !== 1) bad(`has ${fmt.channels} channels; the reference runner takes mono only (downmix first)`);
  if (fmt.rate !== SAMPLE_RATE) {
    bad(`sample rate is ${fmt.rate} Hz; the reference runner takes ${SAMPLE_RATE} Hz only ` +
        '(no resampling here, so resampler differences cannot enter the goldens)');
  }
  let samples;
  if (fmt.format === 1 && fmt.bits === 16) {
    const n = Math.floor(data.length / 2);
    samples = new Float32Array(n);
    for (let i = 0; i < n; i++) samples[i] = data.readInt16LE(2 * i) / 32768;
  } else if (fmt.format === 3 && fmt.bits === 32) {
    const n = Math.floor(data.length / 4);
    samples = new Float32Array(n);
    for (let i = 0; i < n; i++) samples[i] = data.readFloatLE(4 * i);
  } else if (fmt.format === 3 && fmt.bits === 64) {
    const n = Math.floor(data.length / 8);
    samples = new Float32Array(n);
    for (let i = 0; i < n; i++) samples[i] = data.readDoubleLE(8 * i);
  } else {
    bad(`unsupported sample format (format tag ${fmt.format}, ${fmt.bits} bits); ` +
        'use 16-bit PCM or 32/64-bit float');
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------
// .npy writer, format version 1.0, little-endian float32, C order.
function npyBytes(rows, nCols) {
  const nRows = rows.length;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${nRows}, ${nCols}), }`;
  const pre = 10; // magic(6) + version(2) + header_len(2)
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - pre - header.length - 1) + '\n';
  const out = Buffer.alloc(total + nRows * nCols * 4);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1; out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, pre, 'latin1');
  let p = total;
  for (let r = 0; r < nRows; r++) {
    const row = rows[r];
    if (row.length !== nCols) throw new Error(`row ${r} has ${row.length} columns, expected ${nCols}`);
    for (let c = 0; c < nCols; c++, p += 4) out.writeFloatLE(row[c], p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
function sha256(buf) { return crypto.createHash('sha256').update(buf).digest('hex'); }

function readModelFiles(dir) {
  const sums = path.join(dir, 'SHA256SUMS');
  if (fs.existsSync(sums)) {
    for (const line of fs.readFileSync(sums, 'utf8').split('\n')) {
      const m = line.match(/^([0-9a-f]{64}) [ *](.+)$/);
      if (!m) continue;
      const got = sha256(fs.readFileSync(path.join(dir, m[2])));
      if (got !== m[1]) throw new Error(`${path.join(dir, m[2])}: sha256 ${got} does not match SHA256SUMS (${m[1]})`);
    }
  }
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = [];
  const shards = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return { modelJson, weightSpecs, weightData };
}

async function setupBackend(tf, backend) {
  if (backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    // Plain file paths: Emscripten reads them with fs in Node; no fetch, no network.
    wasm.setWasmPaths({
      'tfjs-backend-wasm.wasm': path.join(dist, 'tfjs-backend-wasm.wasm'),
      'tfjs-backend-wasm-simd.wasm': path.join(dist, 'tfjs-backend-wasm-simd.wasm'),
      'tfjs-backend-wasm-threaded-simd.wasm': path.join(dist, 'tfjs-backend-wasm-threaded-simd.wasm'),
    });
    // tfjs-backend-wasm 3.21's Fill kernel passes attrs.dtype straight to makeOutput; tf.signal.frame(padEnd)
    // calls fill() without a dtype -> "Unknown dtype undefined". Re-register it with the default the CPU
    // backend uses (float32 for numbers). Same values, no numeric effect.
    tf.unregisterKernel('Fill', 'wasm');
    tf.registerKernel({
      kernelName: 'Fill',
      backendName: 'wasm',
      kernelFunc: ({ attrs, backend: b }) => {
        const dtype = attrs.dtype || (typeof attrs.value === 'string' ? 'string' : 'float32');
        const out = b.makeOutput(attrs.shape, dtype);
        b.typedArrayFromHeap(out).fill(attrs.value);
        return out;
      },
    });
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`tfjs backend '${backend}' failed to initialise`);
  await tf.ready();
  if (tf.getBackend() !== backend) throw new Error(`tfjs runs on '${tf.getBackend()}', not '${backend}'`);
}

function notesFor(bp, frames, onsets, contours, p) {
  // outputToNotesPoly may modify its inputs (constrainFrequency); give it copies.
  const f = frames.map((r) => r.slice());
  const o = onsets.map((r) => r.slice());
  const events = bp.outputToNotesPoly(f, o, p.onsetThresh, p.frameThresh, p.minNoteLen, p.inferOnsets,
                                      p.maxFreq, p.minFreq, p.melodiaTrick);
  const withBends = bp.addPitchBendsToNoteEvents(contours, events);
  const timed = bp.noteFramesToTime(withBends);
  return timed.map((n, i) => ({
    start_s: n.startTimeSeconds,
    end_s: n.startTimeSeconds + n.durationSeconds,
    duration_s: n.durationSeconds,
    pitch_midi: n.pitchMidi,
    amplitude: n.amplitude,
    start_frame: withBends[i].startFrame,
    duration_frames: withBends[i].durationFrames,
    pitch_bends: n.pitchBends,
  }));
}

function notesJson(meta, notes) {
  // One note per line for readable diffs; JSON.stringify prints the shortest round-trip form of each
  // double, i.e. full precision.
  const head = JSON.stringify(meta, null, 2).replace(/\n}$/, '');
  const body = notes.map((n) => '    ' + JSON.stringify(n)).join(',\n');
  return `${head},\n  "notes": [\n${body}${notes.length ? '\n' : ''}  ]\n}\n`;
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const timing = { backend: opt.backend };

  const samples = readWav(opt.in);
  const tf = require('@tensorflow/tfjs');
  const bp = require('@spotify/basic-pitch');
  const bpVersion = require('@spotify/basic-pitch/package.json').version;
  const tfVersion = tf.version_core;

  let t = now();
  await setupBackend(tf, opt.backend);
  timing.startup_s = t; // node start + module loading + WAV read
  timing.backend_init_s = now() - t;

  t = now();
  const { modelJson, weightSpecs, weightData } = readModelFiles(opt.model);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs,
    weightData,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    signature: modelJson.signature,
    userDefinedMetadata: modelJson.userDefinedMetadata,
  }));
  timing.load_s = now() - t;

  const basicPitch = new bp.BasicPitch(Promise.resolve(model));
  const frames = [];
  const onsets = [];
  const contours = [];
  let nWindows = 0;
  t = now();
  await basicPitch.evaluateModel(samples, (f, o, c) => {
    frames.push(...f);
    onsets.push(...o);
    contours.push(...c);
  }, (pct) => { if (pct < 1) nWindows++; });
  timing.eval_s = now() - t;

  fs.mkdirSync(opt.out, { recursive: true });
  t = now();
  fs.writeFileSync(path.join(opt.out, 'frames.npy'), npyBytes(frames, 88));
  fs.writeFileSync(path.join(opt.out, 'onsets.npy'), npyBytes(onsets, 88));
  fs.writeFileSync(path.join(opt.out, 'contours.npy'), npyBytes(contours, 264));
  timing.write_npy_s = now() - t;

  const presets = !opt.notes ? [] : opt.preset === 'both' ? ['python', 'js'] : [opt.preset];
  timing.post_s = 0;
  timing.post_s_by_preset = {};
  for (const name of presets) {
    const p = PRESETS[name];
    t = now();
    const notes = notesFor(bp, frames, onsets, contours, p);
    const dt = now() - t;
    timing.post_s += dt;
    timing.post_s_by_preset[name] = dt;
    const meta = {
      preset: name,
      params: { ...p, energyTolerance: 11, pitchBends: 'addPitchBendsToNoteEvents(contours, notes), nBinsTolerance 25' },
      implementation: `@spotify/basic-pitch ${bpVersion}, tfjs ${tfVersion}, backend ${opt.backend}`,
      input: path.basename(opt.in),
      n_frames: frames.length,
      n_notes: notes.length,
    };
    fs.writeFileSync(path.join(opt.out, `notes-${name}.json`), notesJson(meta, notes));
  }

  timing.audio_s = samples.length / SAMPLE_RATE;
  timing.n_samples = samples.length;
  timing.n_frames = frames.length;
  timing.n_windows = nWindows;
  timing.tfjs = tfVersion;
  timing.basic_pitch = bpVersion;
  timing.node = process.version;
  timing.total_s = now(); // since process start (node's own startup before this script is not included)
  fs.writeFileSync(path.join(opt.out, 'timing.json'), JSON.stringify(timing, null, 2) + '\n');
}

main().catch((e) => die(e && e.message ? e.message : String(e)));
