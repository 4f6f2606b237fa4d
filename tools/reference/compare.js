#!/usr/bin/env node
// Compare two output directories of run.js (or an engine's output in the same formats):
// posteriorgram max/mean absolute difference and note-list identity.
//
//   node compare.js DIR_A DIR_B [--tol 1e-4] [--time-tol 1e-6]
//
// Prints one line per file and a final line
//   COMPARE max_abs=<x> frames=<a> onsets=<b> contours=<c> notes=<same|DIFFERENT>
// Exit status 1 if a posterior differs by more than --tol or a note list differs.
'use strict';
const fs = require('fs');
const path = require('path');

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  if (!/'descr':\s*'<f4'/.test(header) || !/'fortran_order':\s*False/.test(header)) {
    throw new Error(`${file}: expected little-endian float32 C-order, header ${header.trim()}`);
  }
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const off = hstart + hlen;
  const n = shape.reduce((a, x) => a * x, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = b.readFloatLE(off + 4 * i);
  return { shape, data };
}

function main() {
  const args = process.argv.slice(2);
  let tol = 1e-4;
  let timeTol = 1e-6;
  const dirs = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--tol') tol = Number(args[++i]);
    else if (args[i] === '--time-tol') timeTol = Number(args[++i]);
    else dirs.push(args[i]);
  }
  if (dirs.length !== 2) {
    process.stderr.write('usage: node compare.js DIR_A DIR_B [--tol 1e-4] [--time-tol 1e-6]\n');
    process.exit(2);
  }
  let fail = false;
  let overall = 0;
  const per = {};
  for (const name of ['frames', 'onsets', 'contours']) {
    const a = readNpy(path.join(dirs[0], `${name}.npy`));
    const b = readNpy(path.join(dirs[1], `${name}.npy`));
    if (a.shape.join(',') !== b.shape.join(',')) {
      console.log(`${name}: SHAPE DIFFERS ${a.shape} vs ${b.shape}`);
      fail = true;
      per[name] = 'shape';
      continue;
    }
    let max = 0;
    let sum = 0;
    let at = -1;
    for (let i = 0; i < a.data.length; i++) {
      const d = Math.abs(a.data[i] - b.data[i]);
      if (!(d <= max)) { max = d; at = i; }
      sum += d;
    }
    const cols = a.shape[1];
    const mean = a.data.length ? sum / a.data.length : 0;
    console.log(`${name}: shape [${a.shape}] max_abs=${max.toExponential(3)} mean_abs=${mean.toExponential(3)}` +
                (at >= 0 ? ` at [${Math.floor(at / cols)},${at % cols}]` : ''));
    if (!(max <= tol)) fail = true;
    overall = Math.max(overall, max);
    per[name] = max.toExponential(3);
  }
  let notesSame = true;
  for (const preset of ['python', 'js']) {
    const fa = path.join(dirs[0], `notes-${preset}.json`);
    const fb = path.join(dirs[1], `notes-${preset}.json`);
    if (!fs.existsSync(fa) || !fs.existsSync(fb)) continue;
    const na = JSON.parse(fs.readFileSync(fa, 'utf8')).notes;
    const nb = JSON.parse(fs.readFileSync(fb, 'utf8')).notes;
    let diffs = 0;
    let bendDiffs = 0;
    if (na.length !== nb.length) diffs = Math.abs(na.length - nb.length);
    for (let i = 0; i < Math.min(na.length, nb.length); i++) {
      const x = na[i];
      const y = nb[i];
      if (x.pitch_midi !== y.pitch_midi || Math.abs(x.start_s - y.start_s) > timeTol ||
          Math.abs(x.end_s - y.end_s) > timeTol) {
        diffs++;
      } else if (JSON.stringify(x.pitch_bends) !== JSON.stringify(y.pitch_bends)) {
        bendDiffs++;
      }
    }
    console.log(`notes-${preset}: ${na.length} vs ${nb.length} notes, ${diffs} differ (pitch/start/end), ` +
                `${bendDiffs} differ in pitch_bends only`);
    if (diffs || bendDiffs) { notesSame = false; fail = true; }
  }
  console.log(`COMPARE max_abs=${overall.toExponential(3)} frames=${per.frames} onsets=${per.onsets} ` +
              `contours=${per.contours} notes=${notesSame ? 'same' : 'DIFFERENT'}`);
  process.exit(fail ? 1 : 0);
}

main();
