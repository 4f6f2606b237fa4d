// wtt's page: upload, live progress, results (piano roll, tab, the
// recording on one cursor), re-tuning, downloads, history. docs/web.md.
//
// Everything the server or the user names (file names, error details) is
// put on the page with textContent, never parsed as HTML.

import * as api from './api.js';
import { watch } from './watch.js';
import { PianoRoll } from './pianoroll.js';
import { TabView } from './tabview.js';
import { History, renderHistory } from './history.js';
import { Options } from './options.js';

const $ = (id) => document.getElementById(id);
const OUTPUTS = ['midi', 'notes', 'posteriors'];
const MAX_BUSY_RETRIES = 5;
const RETUNE_DEBOUNCE_MS = 120;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const state = {
  cfg: {},
  file: null,
  id: null,
  name: '',
  duration: 0,
  stopWatch: null,
  tabSeq: 0,
  retune: { busy: false, again: false, timer: 0 },
};

let options;
let history;
let roll;
let tab;
let tabReady = Promise.resolve(false);

function show(el, on) { el.hidden = !on; }

function setError(el, message, action) {
  el.replaceChildren();
  if (!message) { show(el, false); return; }
  const p = document.createElement('span');
  p.textContent = message;
  el.append(p);
  if (action) el.append(action);
  show(el, true);
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// ------------------------------------------------------------ upload

function chooseFile(file) {
  state.file = file || null;
  const chosen = $('chosen');
  if (!file) { chosen.textContent = ''; return; }
  chosen.textContent = `${file.name} (${api.formatBytes(file.size)})`;
  setError($('upload-error'), '');
  const max = state.cfg.max_upload_bytes;
  if (max && file.size > max) {
    setError($('upload-error'), api.explain('upload', 413, null, null, state.cfg));
  }
}

function setupDrop() {
  const drop = $('drop');
  const input = $('file');
  input.addEventListener('change', () => chooseFile(input.files[0]));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) chooseFile(f);
  });
  // Dropping a file anywhere else must not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
}

// Runs `fn` again after the server's Retry-After while it says it is busy,
// telling the user how long they wait.
async function whileBusy(fn, errEl) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const busy = e.status === 503 || e.status === 429;
      if (!busy || attempt >= MAX_BUSY_RETRIES) throw e;
      let left = e.retryAfter || 5;
      while (left > 0) {
        setError(errEl, `The server is busy right now. Trying again in ${left} s.`);
        await sleep(1000);
        left -= 1;
      }
      setError(errEl, '');
    }
  }
}

async function submit(ev) {
  ev.preventDefault();
  const errEl = $('upload-error');
  setError(errEl, '');
  const file = state.file;
  if (!file) {
    setError(errEl, 'Choose a recording first: drop it on the box above or use "choose a file".');
    $('file').focus();
    return;
  }
  const max = state.cfg.max_upload_bytes;
  if (max && file.size > max) {
    setError(errEl, api.explain('upload', 413, null, null, state.cfg));
    return;
  }
  const go = $('go');
  go.disabled = true;
  const prog = $('upload-progress');
  try {
    prog.textContent = 'Sending… 0%';
    const up = await whileBusy(() => api.upload(file, (f) => {
      prog.textContent = `Sending… ${Math.round(f * 100)}%`;
    }), errEl);
    prog.textContent = '';
    const id = up.audio_midi_id;
    state.name = file.name;
    state.duration = up.duration_s || 0;
    const decoding = options.decoding();
    history.put(id, { name: file.name, status: 'uploaded', duration_s: up.duration_s, options: decoding });
    refreshHistory();
    setUrlId(id);
    const key = uuid();
    await whileBusy(() => api.generate(id, { ...decoding, outputs: OUTPUTS }, key), errEl);
    history.put(id, { status: 'pending' });
    refreshHistory();
    follow(id, file.name);
  } catch (e) {
    prog.textContent = '';
    setError(errEl, e.message || String(e));
  } finally {
    go.disabled = false;
  }
}

function setUrlId(id) {
  const url = id ? `/?id=${encodeURIComponent(id)}` : '/';
  window.history.replaceState(null, '', url);
}

// ------------------------------------------------------------ progress

const STATE_WORDS = {
  pending: 'Waiting in line',
  queued: 'Waiting in line',
  processing: 'Listening',
  completed: 'Done',
  failed: 'Failed',
};

function follow(id, name) {
  if (state.stopWatch) state.stopWatch();
  state.id = id;
  $('progress-name').textContent = name || 'your recording';
  show($('progress'), true);
  show($('result'), false);
  const bar = $('bar');
  bar.removeAttribute('value');
  bar.dataset.events = '0';
  $('state').textContent = 'Waiting in line…';
  $('progress-text').textContent = '';
  $('progress').scrollIntoView({ block: 'nearest' });
  state.stopWatch = watch(id, !!state.cfg.events, {
    onState: ({ status, position }) => {
      let text = STATE_WORDS[status] || status;
      if ((status === 'queued' || status === 'pending') && typeof position === 'number') {
        text += position === 0 ? ': you are next' : `: ${position} ahead of you`;
      }
      $('state').textContent = `${text}…`;
      $('state').dataset.status = status;
      history.put(id, { status });
      refreshHistory();
    },
    onProgress: ({ done, total, eta_s: eta }) => {
      bar.max = total;
      bar.value = done;
      bar.dataset.events = String(Number(bar.dataset.events) + 1);
      bar.setAttribute('aria-valuetext', `${done} of ${total}`);
      let text = `Window ${done} of ${total}`;
      if (typeof eta === 'number' && eta >= 0 && done < total) text += ` · about ${api.formatDuration(eta)} left`;
      $('progress-text').textContent = text;
      $('state').textContent = 'Listening…';
    },
    onCompleted: (s) => {
      state.stopWatch = null;
      bar.max = 1;
      bar.value = 1;
      $('state').textContent = 'Done.';
      $('state').dataset.status = 'completed';
      history.put(id, { status: 'completed', notes: s && s.note_count });
      refreshHistory();
      showResult(id).catch((e) => setError($('result-error'), e.message || String(e)));
    },
    onFailed: (why) => {
      state.stopWatch = null;
      $('state').dataset.status = 'failed';
      $('state').textContent = 'The transcription failed.';
      $('progress-text').textContent = why ? `The server said: ${why}` : '';
      history.put(id, { status: 'failed' });
      refreshHistory();
    },
  });
}

// ------------------------------------------------------------ results

function downloads(id) {
  const t = options.tab();
  const enc = encodeURIComponent(id);
  const items = [
    ['MIDI', `/transcribe/midi/${enc}/`],
    ['Notes (JSON)', `/transcribe/notes/${enc}/`],
    ['Notes (CSV)', `/transcribe/notes/${enc}/?format=csv`],
    ['Tab (text)', api.tabUrl(id, 'ascii', t)],
    ['MusicXML', api.tabUrl(id, 'musicxml', t)],
    ['alphaTex', api.tabUrl(id, 'alphatex', t)],
    ['Guitar Pro', api.tabUrl(id, 'gp', t)],
  ];
  const ul = $('downloads');
  ul.replaceChildren();
  for (const [label, href] of items) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = href;
    a.textContent = label;
    a.setAttribute('download', '');
    a.dataset.kind = label;
    li.append(a);
    ul.append(li);
  }
}

async function loadNotes(id) {
  const doc = await api.notes(id);
  const notes = Array.isArray(doc.notes) ? doc.notes : [];
  roll.setNotes(notes, state.duration);
  roll.paint();
  const count = $('note-count');
  count.textContent = String(notes.length);
  // Which notes the tab below is written from (tests wait on these).
  state.notesVersion = (state.notesVersion || 0) + 1;
  count.dataset.version = String(state.notesVersion);
  return notes.length;
}

// Draws the tab for the current tab options; resolves with the time it
// took (ms) until it was on screen.
async function renderTab(id) {
  const seq = ++state.tabSeq;
  const t0 = performance.now();
  const t = options.tab();
  const version = state.notesVersion;
  $('tab-status').textContent = 'Writing the tab…';
  await tabReady;
  try {
    const wanted = tab.ready
      ? Promise.all([api.tabText(id, 'alphatex', t), api.tabJson(id, t)])
      : Promise.all([Promise.resolve(''), Promise.resolve(null), api.tabText(id, 'ascii', t)]);
    const [tex, doc, ascii] = await wanted;
    if (seq !== state.tabSeq) return null;
    $('tab').dataset.fetchMs = String(Math.round(performance.now() - t0));
    await tab.show(tex, doc, ascii);
    if (seq !== state.tabSeq) return null;
    const ms = Math.round(performance.now() - t0);
    $('tab').dataset.key = `${t.instrument}/${t.tuning}/${t.capo}`;
    $('tab').dataset.notes = String(version);
    $('tab-status').textContent = `Tab for ${t.tuning.replace(/_/g, ' ')} tuning${t.capo !== '0' ? `, capo ${t.capo}` : ''} (${ms} ms).`;
    $('tab').dataset.ms = String(ms);
    return ms;
  } catch (e) {
    if (seq === state.tabSeq) $('tab-status').textContent = e.message || String(e);
    return null;
  }
}

async function showResult(id) {
  state.id = id;
  const entry = history.get(id);
  if (entry && entry.name) state.name = entry.name;
  if (entry && entry.options) options.setDecoding(entry.options);
  $('result-name').textContent = state.name || 'your recording';
  $('result').dataset.id = id;
  setError($('result-error'), '');
  show($('result'), true);
  const audio = $('audio');
  audio.src = `/transcribe/audio/${encodeURIComponent(id)}/`;
  downloads(id);
  const count = await loadNotes(id);
  history.put(id, { status: 'completed', notes: count });
  refreshHistory();
  await renderTab(id);
  document.body.dataset.result = id;
}

// Opens a past upload: its result, its progress, or why it failed.
async function open(id) {
  if (state.stopWatch) { state.stopWatch(); state.stopWatch = null; }
  setUrlId(id);
  const entry = history.get(id);
  state.name = (entry && entry.name) || '';
  let s;
  try {
    s = await api.status(id);
  } catch (e) {
    show($('progress'), false);
    show($('result'), true);
    $('result-name').textContent = state.name || id;
    setError($('result-error'), e.message);
    return;
  }
  state.duration = s.duration_s || 0;
  if (s.status === 'completed') {
    show($('progress'), false);
    await showResult(id);
  } else if (s.status === 'failed') {
    show($('result'), false);
    show($('progress'), true);
    $('progress-name').textContent = state.name || 'your recording';
    $('state').textContent = 'The transcription failed.';
    $('progress-text').textContent = s.error ? `The server said: ${s.error}` : '';
    history.put(id, { status: 'failed' });
  } else {
    follow(id, state.name);
  }
  $('result').scrollIntoView({ block: 'nearest' });
}

// ------------------------------------------------------------ re-tuning

// The sliders re-segment the stored posteriorgram (POST retune): no new
// task. Only one request is in flight; moves meanwhile send the latest.
function scheduleRetune() {
  if (!state.id || $('result').hidden) return;
  clearTimeout(state.retune.timer);
  state.retune.timer = setTimeout(runRetune, RETUNE_DEBOUNCE_MS);
}

async function runRetune() {
  const r = state.retune;
  if (r.busy) { r.again = true; return; }
  r.busy = true;
  const id = state.id;
  const decoding = options.decoding();
  const t0 = performance.now();
  try {
    await api.retune(id, decoding);
    const n = await loadNotes(id);
    const ms = Math.round(performance.now() - t0);
    $('note-count').dataset.ms = String(ms);
    $('retune-time').textContent = `(re-tuned in ${ms} ms)`;
    history.put(id, { notes: n, options: decoding });
    refreshHistory();
    setError($('result-error'), '');
    renderTab(id);
  } catch (e) {
    setError($('result-error'), e.message || String(e));
  } finally {
    r.busy = false;
    if (r.again) { r.again = false; runRetune(); }
  }
}

// ------------------------------------------------------------ player

function setupPlayer() {
  const audio = $('audio');
  let frame = 0;
  const tick = () => {
    roll.setTime(audio.currentTime);
    tab.setTime(audio.currentTime);
    frame = audio.paused ? 0 : requestAnimationFrame(tick);
  };
  audio.addEventListener('play', () => {
    tab.playing(true);
    if (!frame) frame = requestAnimationFrame(tick);
  });
  audio.addEventListener('pause', () => tab.playing(false));
  audio.addEventListener('seeked', () => {
    roll.setTime(audio.currentTime);
    tab.setTime(audio.currentTime);
  });
  audio.addEventListener('error', () => {
    if (audio.getAttribute('src')) setError($('result-error'), 'The recording cannot be played in this browser; the tab and piano roll still work.');
  });
  const synth = $('synth');
  synth.addEventListener('click', () => {
    const on = synth.getAttribute('aria-pressed') !== 'true';
    synth.setAttribute('aria-pressed', String(on));
    synth.textContent = on ? 'Stop the synth' : 'Play the notes (synth)';
    tab.setSynth(on);
  });
}

function seek(t) {
  const audio = $('audio');
  if (Number.isFinite(t)) audio.currentTime = t;
  tab.setTime(t);
}

// ------------------------------------------------------------ history

function refreshHistory() {
  if (!history.enabled) return;
  renderHistory($('history-list'), history.list(), (id) => open(id));
}

// Entries still running when the page was closed: ask the server once.
async function refreshStale() {
  for (const e of history.list()) {
    if (e.status === 'completed' || e.status === 'failed') continue;
    try {
      const s = await api.status(e.id);
      history.put(e.id, { status: s.status, notes: s.note_count ?? e.notes });
    } catch (err) {
      if (err.status === 404) history.put(e.id, { status: 'failed' });
    }
  }
  refreshHistory();
}

// ------------------------------------------------------------ start

async function start() {
  try {
    state.cfg = await api.getConfig();
  } catch (e) {
    state.cfg = { history: true };
    setError($('upload-error'), e.message);
  }
  const cfg = state.cfg;
  api.setLimits(cfg);
  const parts = ['WAV, MP3, FLAC or Ogg'];
  if (cfg.max_upload_bytes) parts.push(`up to ${api.formatBytes(cfg.max_upload_bytes)}`);
  if (cfg.max_audio_s) parts.push(`${api.formatDuration(cfg.max_audio_s)} long at most`);
  $('limit').textContent = `${parts.join(', ')}.`;

  options = new Options(document, cfg.instruments);
  history = new History(cfg.history !== false);
  show($('history'), history.enabled);
  show($('nav-history'), history.enabled);

  roll = new PianoRoll($('roll-wrap'), $('roll-spacer'), $('roll'), seek);
  tab = new TabView({ el: $('tab'), ascii: $('tab-ascii'), status: $('tab-status'),
    scroller: $('tab-wrap'), audio: $('audio') });

  setupDrop();
  setupPlayer();
  $('upload-form').addEventListener('submit', submit);
  for (const id of ['onset', 'frame', 'minlen']) $(id).addEventListener('input', scheduleRetune);
  $('mode').addEventListener('change', scheduleRetune);
  $('preset').addEventListener('change', scheduleRetune);
  const retab = () => {
    if (!state.id || $('result').hidden) return;
    downloads(state.id);
    renderTab(state.id);
  };
  $('instrument').addEventListener('change', retab);
  $('tuning').addEventListener('change', retab);
  $('capo').addEventListener('change', retab);
  $('notation').addEventListener('change', () => tab.setNotation($('notation').checked));
  $('zoom-in').addEventListener('click', () => roll.zoom(1.25));
  $('zoom-out').addEventListener('click', () => roll.zoom(0.8));
  $('history-clear').addEventListener('click', () => { history.clear(); refreshHistory(); });

  refreshHistory();
  document.body.dataset.ready = '1';
  performance.mark('wtt:interactive');

  // alphaTab is large: it loads after the page is usable.
  tabReady = tab.init(cfg.alphatab || null).then((ok) => {
    performance.mark('wtt:alphatab');
    return ok;
  });

  const id = new URLSearchParams(window.location.search).get('id');
  if (id && UUID.test(id)) open(id);
  refreshStale();
}

start();
