#!/usr/bin/env node
// Loads tab files with alphaTab's own importers and prints what alphaTab read, so
// wtt's specs can compare it with the tab document the files were written from.
//
//   node check.js FILE...        one JSON object per FILE, one per line
//
// The format follows the suffix: .alphatex/.atex (alphaTex), .gp (Guitar Pro 7),
// .musicxml/.xml (MusicXML). Each object holds:
//   file, format, importer (the alphaTab importer that read it), title, tempo,
//   tracks, tuning (MIDI, highest string first), capo, bars (count),
//   measures: [{ index, time_signature, start, duration, anacrusis }],
//             (start: the sum of the bars before, in ticks)
//   beats:    [{ bar, voice, start, duration, tick, value, dots, tuplet, rest,
//               notes }],
//   notes:    [{ bar, beat, start, duration, tick, string, fret, tie, ... }],
//   diagnostics (alphaTex warnings and errors), log (alphaTab's own warnings),
// or { file, error } when alphaTab refused the file (the exit status is then 1).
// Positions are alphaTab ticks (960 per quarter note): start is from the bar's
// start, tick from the piece's start. string counts from 1 = the highest string,
// as wtt's tab document does (alphaTab itself counts from the lowest).
"use strict";

const fs = require("fs");
const path = require("path");
const at = require("@coderline/alphatab");

const log = [];
let importerName = null;
at.Logger.logLevel = at.LogLevel.Debug;
at.Logger.log = {
    debug(category, msg) {
        const m = /^Score imported using (.*)$/.exec(String(msg));
        if (m) importerName = m[1];
    },
    info() {},
    warning(category, msg, ...details) { log.push(`warning ${category}: ${msg} ${details.join(" ")}`.trim()); },
    error(category, msg, ...details) { log.push(`error ${category}: ${msg} ${details.join(" ")}`.trim()); },
};

function formatOf(file) {
    const ext = path.extname(file).toLowerCase();
    if (ext === ".alphatex" || ext === ".atex") return "alphatex";
    if (ext === ".gp") return "gp";
    if (ext === ".musicxml" || ext === ".xml") return "musicxml";
    return null;
}

function diagnosticsOf(importer) {
    const out = [];
    const bags = [importer.lexerDiagnostics, importer.parserDiagnostics, importer.semanticDiagnostics];
    for (const bag of bags) {
        if (!bag) continue;
        for (const d of bag.items) {
            const where = d.start ? ` (${d.start.line},${d.start.col})` : "";
            out.push(`AT${String(d.code).padStart(3, "0")}${where}: ${d.message}`);
        }
    }
    return out;
}

function load(file, format) {
    const settings = new at.Settings();
    if (format === "alphatex") {
        // The importer itself rather than ScoreLoader.loadAlphaTex, to keep its
        // warnings: alphaTab recovers from some mistakes without failing.
        const importer = new at.importer.AlphaTexImporter();
        importer.initFromString(fs.readFileSync(file, "utf8"), settings);
        const score = importer.readScore();
        return { score, importer: importer.name, diagnostics: diagnosticsOf(importer) };
    }
    importerName = null;
    const score = at.importer.ScoreLoader.loadScoreFromBytes(new Uint8Array(fs.readFileSync(file)), settings);
    return { score, importer: importerName, diagnostics: [] };
}

function noteOf(n, nStrings) {
    const o = {
        string: nStrings - n.string + 1,
        fret: n.fret,
        tie: n.isTieDestination,
    };
    if (n.isHammerPullOrigin) o.hammer_pull_origin = true;
    if (n.slideOutType) o.slide_out = at.model.SlideOutType[n.slideOutType];
    if (n.vibrato) o.vibrato = at.model.VibratoType[n.vibrato];
    if (n.isLetRing) o.let_ring = true;
    if (n.hasBend) o.bend = n.bendPoints.map((p) => [p.offset, p.value]);
    return o;
}

function describe(file) {
    const format = formatOf(file);
    if (!format) throw new Error("unknown suffix (want .alphatex, .gp or .musicxml)");
    const { score, importer, diagnostics } = load(file, format);
    const track = score.tracks[0];
    // The tab staff: the one with a tuning (wtt's MusicXML has a notation
    // staff before it).
    const staff = track.staves.find((s) => s.showTablature && s.tuning.length > 0) || track.staves[0];
    const nStrings = staff.tuning.length;
    const out = {
        file, format, importer,
        title: score.title,
        tempo: score.tempo,
        tracks: score.tracks.length,
        staves: track.staves.length,
        tuning: staff.tuning.slice(),
        capo: staff.capo,
        bars: score.masterBars.length,
        measures: [], beats: [], notes: [],
        diagnostics, log: log.splice(0),
    };
    // Bar starts summed here: alphaTab's own MasterBar.start does not
    // advance past a pickup bar.
    const barStart = [];
    let at0 = 0;
    for (const mb of score.masterBars) {
        const duration = mb.calculateDuration();
        barStart.push(at0);
        out.measures.push({
            index: mb.index,
            time_signature: [mb.timeSignatureNumerator, mb.timeSignatureDenominator],
            start: at0,
            duration,
            anacrusis: mb.isAnacrusis,
        });
        at0 += duration;
    }
    for (const bar of staff.bars) {
        // The voice with the music: MusicXML's tab staff numbers its voice
        // after the notation staff's, so its first voice may be empty.
        const voice = bar.voices.find((v) => !v.isEmpty) || bar.voices[0];
        for (const b of voice.beats) {
            const beat = {
                bar: bar.index,
                voice: voice.index,
                start: b.playbackStart,
                duration: b.playbackDuration,
                tick: barStart[bar.index] + b.playbackStart,
                value: b.duration,
                dots: b.dots,
                tuplet: b.hasTuplet ? [b.tupletNumerator, b.tupletDenominator] : null,
                rest: b.isRest,
                notes: b.notes.map((n) => noteOf(n, nStrings)),
            };
            out.beats.push(beat);
            for (const n of beat.notes) {
                out.notes.push(Object.assign({ bar: bar.index, beat: b.index, start: beat.start,
                    duration: beat.duration, tick: beat.tick }, n));
            }
        }
    }
    return out;
}

let status = 0;
const files = process.argv.slice(2);
if (files.length === 0) {
    process.stderr.write("usage: node check.js FILE...\n");
    process.exit(2);
}
for (const file of files) {
    let out;
    try {
        out = describe(file);
    } catch (e) {
        let msg = e && e.message ? e.message : String(e);
        if (e && e.inner && e.inner.toString) msg += ": " + e.inner.toString();
        if (e && typeof e.iterateDiagnostics === "function") msg = e.toString();
        out = { file, error: msg, log: log.splice(0) };
        status = 1;
    }
    process.stdout.write(JSON.stringify(out) + "\n");
}
// Not process.exit: it would cut a long write to a pipe short.
process.exitCode = status;
