// The service's HTTP API as the page uses it (docs/api.md), and its
// errors in words a musician understands. Nothing here touches the DOM.

export class ApiError extends Error {
  // message: for people; status: HTTP status (0: no answer); retryAfter:
  // seconds the server asked us to wait (Retry-After), or null.
  constructor(message, status, retryAfter = null, code = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
    this.code = code;
  }
}

export function formatBytes(n) {
  if (n >= 1024 * 1024 * 1024) return `${(n / (1024 * 1024 * 1024)).toFixed(1)} GB`;
  if (n >= 1024 * 1024) return `${Math.round(n / (1024 * 1024))} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} bytes`;
}

export function formatDuration(s) {
  if (!(s >= 0)) return '';
  if (s >= 3600) {
    const h = Math.floor(s / 3600);
    const m = Math.round((s % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  if (s >= 60) {
    const m = Math.floor(s / 60);
    const r = Math.round(s % 60);
    return r ? `${m} min ${r} s` : `${m} min`;
  }
  return `${Math.max(1, Math.round(s))} s`;
}

function retryAfterOf(res) {
  const v = res.headers.get('Retry-After');
  if (!v) return null;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(1, Math.round(n));
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(1, Math.round((at - Date.now()) / 1000)) : null;
}

// What an error answer means to a musician. `what` names the step
// ('upload', 'generate', 'retune', 'tab', ...); `limits` is the config.
export function explain(what, status, body, retryAfter, limits = {}) {
  const detail = (body && typeof body.detail === 'string') ? body.detail : '';
  const code = body && body.error;
  if (status === 413) {
    const max = limits.max_upload_bytes ? ` (the limit is ${formatBytes(limits.max_upload_bytes)})` : '';
    return `This file is too big for this server${max}. A shorter excerpt, or MP3/Ogg instead of WAV, will fit.`;
  }
  if (status === 415) {
    return 'This file is not audio the server can read. Use a WAV, MP3, FLAC or Ogg recording.';
  }
  if (status === 422 && what === 'upload') {
    if (/exceeds the limit/.test(detail)) {
      const max = limits.max_audio_s ? ` (the limit is ${formatDuration(limits.max_audio_s)})` : '';
      return `This recording is too long${max}. Cut it into shorter parts.`;
    }
    return 'The server could not read this recording: the file may be damaged or in an unusual encoding.';
  }
  if (status === 503 || status === 429) {
    const wait = retryAfter ? ` Trying again in ${retryAfter} s.` : ' Try again in a moment.';
    return `The server is busy right now.${wait}`;
  }
  if (status === 409 && what === 'generate') {
    return 'This recording is already being transcribed.';
  }
  if (status === 409 && what === 'retune') {
    return 'This transcription cannot be re-tuned (it was made without the data re-tuning needs, or it is not finished).';
  }
  if (status === 404) {
    if (code === 'not_ready') return 'This result is not ready yet.';
    return 'This transcription is no longer on the server.';
  }
  if (status === 422 && what === 'tab') {
    return 'These notes cannot be played with this instrument, tuning and capo. Try another tuning or a capo.';
  }
  if (status === 0) {
    return 'The server cannot be reached. Check your connection, then try again.';
  }
  return `Something went wrong on the server (${status}${detail ? `: ${detail}` : ''}).`;
}

let limits = {};
export function setLimits(cfg) { limits = cfg || {}; }

async function bodyOf(res) {
  const type = res.headers.get('Content-Type') || '';
  if (type.startsWith('application/json')) {
    try { return await res.json(); } catch { return null; }
  }
  return null;
}

// fetch, with failures turned into ApiError. Returns the Response.
export async function request(what, url, init = {}) {
  let res;
  try {
    res = await fetch(url, { credentials: 'same-origin', ...init });
  } catch {
    throw new ApiError(explain(what, 0, null, null, limits), 0);
  }
  if (!res.ok) {
    const body = await bodyOf(res);
    const retry = retryAfterOf(res);
    throw new ApiError(explain(what, res.status, body, retry, limits), res.status, retry,
      body && body.error);
  }
  return res;
}

export async function json(what, url, init) {
  const res = await request(what, url, init);
  return res.json();
}

export function getConfig() {
  return json('config', '/transcribe/config/');
}

// Upload with progress (fetch has no upload progress): resolves to the
// upload answer, rejects with ApiError.
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/transcribe/upload/');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(explain('upload', 0, null, null, limits), 0));
    xhr.onload = () => {
      if (xhr.status === 201) { resolve(xhr.response); return; }
      const ra = xhr.getResponseHeader('Retry-After');
      const retry = ra && Number.isFinite(Number(ra)) ? Number(ra) : null;
      reject(new ApiError(explain('upload', xhr.status, xhr.response, retry, limits), xhr.status, retry));
    };
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

export function generate(id, options, key) {
  return json('generate', '/transcribe/generate/', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
    body: JSON.stringify({ audio_midi_id: id, options }),
  });
}

export function status(id) {
  return json('status', `/transcribe/status/${encodeURIComponent(id)}/`);
}

export function notes(id) {
  return json('notes', `/transcribe/notes/${encodeURIComponent(id)}/`);
}

export function retune(id, options) {
  return json('retune', `/transcribe/retune/${encodeURIComponent(id)}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(options),
  });
}

// The tab route's URL for `format` and the tab options.
export function tabUrl(id, format, tabOptions) {
  const q = new URLSearchParams({ format });
  for (const [k, v] of Object.entries(tabOptions || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  return `/transcribe/tab/${encodeURIComponent(id)}/?${q}`;
}

export async function tabText(id, format, tabOptions) {
  const res = await request('tab', tabUrl(id, format, tabOptions));
  return res.text();
}

export async function tabJson(id, tabOptions) {
  const res = await request('tab', tabUrl(id, 'json', tabOptions));
  return res.json();
}
