// The uploads made from this browser (there are no accounts), kept in
// localStorage: id, file name, when, status and note count. The operator
// can turn it off (WTT_WEB_HISTORY=off, docs/web.md): the page then keeps
// none and forgets what it kept.

const KEY = 'wtt.history.v1';
const MAX = 50;

function read() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || '[]');
    return Array.isArray(list) ? list.filter((e) => e && typeof e.id === 'string') : [];
  } catch {
    return [];
  }
}

function write(list) {
  try {
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, MAX)));
  } catch {
    // Storage full or refused (private mode): the history is a convenience.
  }
}

export class History {
  constructor(enabled) {
    this.enabled = enabled;
    if (!enabled) {
      try { localStorage.removeItem(KEY); } catch { /* nothing kept */ }
    }
  }

  list() { return this.enabled ? read() : []; }

  // Adds or updates the entry of `id` with `fields`.
  put(id, fields) {
    if (!this.enabled) return;
    const list = read();
    const i = list.findIndex((e) => e.id === id);
    if (i >= 0) {
      list[i] = { ...list[i], ...fields };
    } else {
      list.unshift({ id, at: Date.now(), ...fields });
    }
    write(list);
  }

  get(id) { return this.list().find((e) => e.id === id) || null; }

  clear() {
    try { localStorage.removeItem(KEY); } catch { /* nothing kept */ }
  }
}

const STATUS_WORDS = {
  uploaded: 'uploaded',
  pending: 'waiting',
  queued: 'waiting',
  processing: 'listening',
  completed: 'done',
  failed: 'failed',
};

// Renders `entries` into `ul` (names are data: textContent only).
export function renderHistory(ul, entries, onOpen) {
  ul.replaceChildren();
  if (!entries.length) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'Nothing yet: your transcriptions will be listed here.';
    ul.append(li);
    return;
  }
  for (const e of entries) {
    const li = document.createElement('li');
    li.dataset.id = e.id;
    const a = document.createElement('a');
    a.className = 'name';
    a.href = `/?id=${encodeURIComponent(e.id)}`;
    a.textContent = e.name || e.id;
    a.addEventListener('click', (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
      ev.preventDefault();
      onOpen(e.id);
    });
    const status = document.createElement('span');
    status.className = `status ${e.status || ''}`;
    status.textContent = STATUS_WORDS[e.status] || e.status || '';
    const when = document.createElement('span');
    when.className = 'hint';
    when.textContent = new Date(e.at || Date.now()).toLocaleString();
    li.append(a, status, when);
    if (typeof e.notes === 'number') {
      const n = document.createElement('span');
      n.className = 'hint';
      n.textContent = `${e.notes} notes`;
      li.append(n);
    }
    if (e.status === 'completed') {
      const midi = document.createElement('a');
      midi.href = `/transcribe/midi/${encodeURIComponent(e.id)}/`;
      midi.textContent = 'MIDI';
      midi.setAttribute('download', '');
      li.append(midi);
    }
    ul.append(li);
  }
}
