// Follows a transcription until it ends: Server-Sent Events from
// GET /transcribe/events/{id}/ (docs/web.md) when the server has that route,
// polling GET /transcribe/status/{id}/ otherwise, or when the stream fails
// before it has told us anything.
//
// Callbacks: onState({status, position}), onProgress({done, total, eta_s}),
// onCompleted(statusJson), onFailed(message). Returns stop().

import * as api from './api.js';

const POLL_MS = 1000;
const POLL_MAX_MS = 4000;

function parse(ev) {
  try { return JSON.parse(ev.data); } catch { return null; }
}

export function watch(id, useEvents, cb) {
  let stopped = false;
  let es = null;
  let timer = null;
  let ended = false;
  const end = () => { ended = true; stop(); };

  function stop() {
    stopped = true;
    if (es) { es.close(); es = null; }
    if (timer) { clearTimeout(timer); timer = null; }
  }

  // Polling: the status route has no queue position; the ETA is the rate
  // of windows seen so far.
  let firstSeen = null;
  let delay = POLL_MS;
  let lastStatus = null;
  async function poll() {
    if (stopped) return;
    try {
      const s = await api.status(id);
      if (stopped) return;
      delay = POLL_MS;
      if (s.status !== lastStatus) {
        lastStatus = s.status;
        cb.onState({ status: s.status, position: null });
      }
      if (s.progress && s.progress.total > 0) {
        const now = performance.now();
        if (!firstSeen || s.progress.done < firstSeen.done) firstSeen = { t: now, done: s.progress.done };
        let eta = null;
        const doneSince = s.progress.done - firstSeen.done;
        if (doneSince > 0) {
          eta = ((now - firstSeen.t) / 1000 / doneSince) * (s.progress.total - s.progress.done);
        }
        cb.onProgress({ done: s.progress.done, total: s.progress.total, eta_s: eta });
      }
      if (s.status === 'completed') { end(); cb.onCompleted(s); return; }
      if (s.status === 'failed') { end(); cb.onFailed(s.error || ''); return; }
    } catch (e) {
      if (stopped) return;
      if (e.status === 404) { end(); cb.onFailed(e.message); return; }
      delay = Math.min(delay * 2, POLL_MAX_MS);
      if (e.retryAfter) delay = Math.max(delay, e.retryAfter * 1000);
    }
    timer = setTimeout(poll, delay);
  }

  function startEvents() {
    let heard = false;
    es = new EventSource(`/transcribe/events/${encodeURIComponent(id)}/`);
    es.addEventListener('state', (ev) => {
      heard = true;
      const d = parse(ev);
      if (d) cb.onState({ status: d.status, position: d.position ?? null });
    });
    es.addEventListener('progress', (ev) => {
      heard = true;
      const d = parse(ev);
      if (d) cb.onProgress({ done: d.done, total: d.total, eta_s: d.eta_s ?? null });
    });
    es.addEventListener('completed', (ev) => {
      const d = parse(ev) || {};
      end();
      cb.onCompleted(d);
    });
    es.addEventListener('failed', (ev) => {
      const d = parse(ev) || {};
      end();
      cb.onFailed(d.error || '');
    });
    es.onerror = () => {
      if (stopped || ended) return;
      // CLOSED: the server refused the stream (not 200 text/event-stream);
      // a stream that never said anything is not worth retrying either.
      // Otherwise the browser reconnects by itself with Last-Event-ID.
      if (!es || es.readyState === EventSource.CLOSED || !heard) {
        if (es) { es.close(); es = null; }
        poll();
      }
    };
  }

  if (useEvents && typeof EventSource === 'function') startEvents();
  else poll();
  return stop;
}
