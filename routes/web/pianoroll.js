// The piano roll: notes as bars on a canvas (time across, pitch up), their
// pitch bends as curves, a playback cursor, zoom and scroll, click or
// Enter to seek. The canvas stays the width of its box; a spacer inside the
// scrolling box gives the scrollbar the length of the piece.

// Basic Pitch's frame rate: pitch bends hold one value per frame, in
// thirds of a semitone, from the note's first frame.
const FPS = 22050 / 256;
const BEND_STEPS = 3;
const MIN_PX_PER_S = 10;
const MAX_PX_PER_S = 800;

export class PianoRoll {
  constructor(wrap, spacer, canvas, onSeek) {
    this.wrap = wrap;
    this.spacer = spacer;
    this.canvas = canvas;
    this.onSeek = onSeek;
    this.notes = [];
    this.duration = 0;
    this.pxPerS = 80;
    this.time = 0;
    this.follow = true;
    this.lo = 40;
    this.hi = 84;
    this.frame = 0;
    wrap.addEventListener('scroll', () => this.draw());
    canvas.addEventListener('click', (e) => {
      const r = canvas.getBoundingClientRect();
      this.seekTo(this.timeAt(e.clientX - r.left));
    });
    canvas.addEventListener('keydown', (e) => this.key(e));
    canvas.addEventListener('wheel', (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      this.zoom(e.deltaY < 0 ? 1.25 : 0.8);
    }, { passive: false });
    new ResizeObserver(() => this.layout()).observe(wrap);
  }

  setNotes(notes, duration) {
    this.notes = notes.slice().sort((a, b) => a.start_s - b.start_s);
    const end = this.notes.reduce((m, n) => Math.max(m, n.end_s), 0);
    this.duration = Math.max(duration || 0, end, 1);
    let lo = 127;
    let hi = 0;
    for (const n of this.notes) {
      lo = Math.min(lo, n.pitch_midi);
      hi = Math.max(hi, n.pitch_midi);
    }
    if (lo > hi) { lo = 40; hi = 84; }
    this.lo = Math.max(0, lo - 3);
    this.hi = Math.min(127, hi + 3);
    if (!this.zoomed) {
      // A short piece fits the box; a long one starts at a readable zoom.
      const w = this.wrap.clientWidth || 800;
      this.pxPerS = Math.max(MIN_PX_PER_S, Math.min(MAX_PX_PER_S, Math.max(80, w / this.duration)));
    }
    this.layout();
  }

  layout() {
    const w = this.wrap.clientWidth;
    this.spacer.style.width = `${Math.ceil(this.duration * this.pxPerS)}px`;
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.max(1, w);
    const ch = Math.max(1, this.canvas.clientHeight);
    this.canvas.width = Math.round(cw * dpr);
    this.canvas.height = Math.round(ch * dpr);
    this.draw();
  }

  timeAt(x) { return (this.wrap.scrollLeft + x) / this.pxPerS; }

  seekTo(t) {
    t = Math.max(0, Math.min(this.duration, t));
    this.setTime(t, true);
    if (this.onSeek) this.onSeek(t);
  }

  zoom(f) {
    const w = this.wrap.clientWidth;
    const center = this.timeAt(w / 2);
    this.zoomed = true;
    this.pxPerS = Math.max(MIN_PX_PER_S, Math.min(MAX_PX_PER_S, this.pxPerS * f));
    this.layout();
    this.wrap.scrollLeft = Math.max(0, center * this.pxPerS - w / 2);
    this.draw();
  }

  key(e) {
    const w = this.wrap.clientWidth;
    const handled = {
      ArrowRight: () => { this.wrap.scrollLeft += w / 4; },
      ArrowLeft: () => { this.wrap.scrollLeft -= w / 4; },
      Home: () => { this.wrap.scrollLeft = 0; },
      End: () => { this.wrap.scrollLeft = this.spacer.clientWidth; },
      '+': () => this.zoom(1.25),
      '=': () => this.zoom(1.25),
      '-': () => this.zoom(0.8),
      Enter: () => this.seekTo(this.timeAt(w / 2)),
    }[e.key];
    if (handled) {
      e.preventDefault();
      handled();
      this.draw();
    }
  }

  // The playback position; `jump`: scroll to it even when it is in view.
  setTime(t, jump = false) {
    this.time = t;
    const w = this.wrap.clientWidth;
    const x = t * this.pxPerS - this.wrap.scrollLeft;
    if (this.follow && (jump || x < 0 || x > w * 0.9)) {
      this.wrap.scrollLeft = Math.max(0, t * this.pxPerS - w * 0.25);
    }
    this.draw();
  }

  draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paint();
    });
  }

  // Paints now (the retune timing waits for this).
  paint() {
    const c = this.canvas.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.width / dpr;
    const h = this.canvas.height / dpr;
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, h);
    const rows = this.hi - this.lo + 1;
    const rowH = h / rows;
    const t0 = this.wrap.scrollLeft / this.pxPerS;
    const t1 = t0 + w / this.pxPerS;
    const xOf = (t) => (t - t0) * this.pxPerS;
    const yOf = (p) => h - (p - this.lo + 1) * rowH;

    // Black-key rows and octave lines.
    for (let p = this.lo; p <= this.hi; p++) {
      const pc = p % 12;
      if (pc === 1 || pc === 3 || pc === 6 || pc === 8 || pc === 10) {
        c.fillStyle = '#efeee9';
        c.fillRect(0, yOf(p), w, rowH);
      }
      if (pc === 0) {
        c.fillStyle = '#c9c6bd';
        c.fillRect(0, yOf(p) + rowH - 1, w, 1);
        if (rowH * 12 > 28) {
          c.fillStyle = '#77746c';
          c.font = '10px system-ui, sans-serif';
          c.fillText(`C${p / 12 - 1}`, 2, yOf(p) + rowH - 2);
        }
      }
    }
    // Seconds.
    const step = this.pxPerS >= 60 ? 1 : this.pxPerS >= 15 ? 5 : 10;
    c.fillStyle = '#77746c';
    c.font = '10px system-ui, sans-serif';
    for (let s = Math.ceil(t0 / step) * step; s <= t1; s += step) {
      c.fillRect(xOf(s), 0, 1, 4);
      c.fillText(`${s}s`, xOf(s) + 2, 11);
    }

    for (const n of this.notes) {
      if (n.end_s < t0) continue;
      if (n.start_s > t1) break;
      const x = xOf(n.start_s);
      const nw = Math.max(2, (n.end_s - n.start_s) * this.pxPerS);
      const v = Math.max(0.25, Math.min(1, (n.velocity || 80) / 127));
      c.fillStyle = `rgba(11, 95, 165, ${v})`;
      c.fillRect(x, yOf(n.pitch_midi) + 1, nw, Math.max(1, rowH - 2));
      const bends = n.pitch_bends;
      // A curve where the pitch moves by two thirds of a semitone or more:
      // a steady offset (an instrument tuned a little sharp) or a wobble of
      // one step is in many sustained notes and is not a bend.
      if (bends && bends.length > 1 && Math.max(...bends) - Math.min(...bends) >= 2) {
        c.strokeStyle = '#d35400';
        c.lineWidth = 1.5;
        c.beginPath();
        for (let i = 0; i < bends.length; i++) {
          const bx = xOf(n.start_s + i / FPS);
          const by = yOf(n.pitch_midi + bends[i] / BEND_STEPS) + rowH / 2;
          if (i === 0) c.moveTo(bx, by); else c.lineTo(bx, by);
        }
        c.stroke();
      }
    }
    // Cursor.
    const cx = xOf(this.time);
    if (cx >= 0 && cx <= w) {
      c.fillStyle = '#c0392b';
      c.fillRect(cx - 1, 0, 2, h);
    }
  }
}
