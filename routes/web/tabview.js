// The tab, drawn by alphaTab (served from this origin, /vendor/alphatab/)
// from the tab route's alphaTex. alphaTab's player runs in "external media"
// mode: the original recording is the clock, and sync points (each bar's
// start in the recording, from the tab route's JSON) let alphaTab place its
// cursor from the recording's time, and turn a click on a beat into a seek
// of the recording. "Play the notes" switches the player to alphaTab's
// synthesizer (its soundfont is loaded only then).
//
// Without alphaTab (not installed, or it failed to load) the ASCII tab is
// shown instead.

export class TabView {
  constructor({ el, ascii, status, scroller, audio }) {
    this.el = el;
    this.ascii = ascii;
    this.status = status;
    this.scroller = scroller;
    this.audio = audio;
    this.at = null;
    this.api = null;
    this.doc = null;
    this.synthOn = false;
    this.notation = false;
    this.waiting = [];
  }

  // Loads alphaTab from `base` (a URL path ending in /). Resolves to true
  // when the renderer is there.
  async init(base) {
    if (!base) return false;
    try {
      this.at = await import(`${base}alphaTab.mjs`);
    } catch (e) {
      this.at = null;
      return false;
    }
    this.base = base;
    return true;
  }

  get ready() { return this.at !== null; }

  settings() {
    const at = this.at;
    return {
      core: {
        fontDirectory: `${this.base}font/`,
        engine: 'svg',
        logLevel: 'warning',
      },
      display: {
        layoutMode: at.LayoutMode.Page,
        staveProfile: this.notation ? at.StaveProfile.ScoreTab : at.StaveProfile.Tab,
        scale: 0.9,
      },
      player: {
        playerMode: this.synthOn ? at.PlayerMode.EnabledSynthesizer : at.PlayerMode.EnabledExternalMedia,
        enableCursor: true,
        enableUserInteraction: true,
        scrollElement: this.scroller,
        soundFont: `${this.base}soundfont/sonivox.sf3`,
      },
    };
  }

  create() {
    const at = this.at;
    this.api = new at.AlphaTabApi(this.el, this.settings());
    const api = this.api;
    api.scoreLoaded.on((score) => this.applySync(score));
    // With lazy loading (alphaTab's default: a long piece draws only what
    // is in view), renderFinished means "laid out"; the tab is on screen
    // when the first partial image after it has been placed.
    let laidOut = false;
    const onScreen = () => {
      if (!laidOut) return;
      laidOut = false;
      clearTimeout(this.fallback);
      requestAnimationFrame(() => {
        const done = this.waiting;
        this.waiting = [];
        this.el.dataset.rendered = String(Number(this.el.dataset.rendered || 0) + 1);
        for (const f of done) f();
      });
    };
    api.renderFinished.on(() => {
      laidOut = true;
      const r = this.el.getBoundingClientRect();
      if (r.bottom < 0 || r.top > window.innerHeight) {
        onScreen();   // out of view: nothing is drawn until it is scrolled to
      } else {
        // In view, everything may have been drawn already.
        this.fallback = setTimeout(onScreen, 1000);
      }
    });
    api.renderer.partialRenderFinished.on(onScreen);
    api.error.on((e) => {
      this.status.textContent = `The tab could not be drawn (${e && e.message ? e.message : e}).`;
    });
    api.playerReady.on(() => this.attachMedia());
  }

  // The recording drives alphaTab's cursor (external media mode).
  attachMedia() {
    if (this.synthOn || !this.api || !this.api.player) return;
    const output = this.api.player.output;
    if (!output || !('handler' in output)) return;
    const audio = this.audio;
    output.handler = {
      get backingTrackDuration() { return (audio.duration || 0) * 1000; },
      get playbackRate() { return audio.playbackRate; },
      set playbackRate(v) { audio.playbackRate = v; },
      get masterVolume() { return audio.volume; },
      set masterVolume(v) { audio.volume = v; },
      seekTo(ms) {
        // alphaTab seeks to its first sync point on load; a seek before the
        // recording's metadata is there can leave the element seeking.
        if (audio.readyState >= 1 && Math.abs(audio.currentTime - ms / 1000) > 0.02) audio.currentTime = ms / 1000;
      },
      play() { if (audio.paused) audio.play().catch(() => {}); },
      pause() { if (!audio.paused) audio.pause(); },
    };
    this.output = output;
  }

  applySync(score) {
    const measures = this.doc && this.doc.measures;
    if (!measures || !score || typeof score.applyFlatSyncPoints !== 'function') return;
    const n = Math.min(measures.length, score.masterBars.length);
    const points = [];
    for (let i = 0; i < n; i++) {
      if (typeof measures[i].start_s !== 'number') continue;
      points.push({ barIndex: i, barPosition: 0, barOccurence: 0,
                    millisecondOffset: Math.max(0, measures[i].start_s * 1000) });
    }
    if (points.length) score.applyFlatSyncPoints(points);
  }

  // Shows `tex` (alphaTex) whose bars are `doc.measures` (the tab JSON);
  // resolves when alphaTab has drawn it.
  show(tex, doc, asciiText) {
    this.doc = doc;
    if (!this.ready) {
      this.el.hidden = true;
      this.ascii.hidden = false;
      this.ascii.textContent = asciiText || '';
      return Promise.resolve();
    }
    if (!this.api) this.create();
    const drawn = new Promise((resolve) => this.waiting.push(resolve));
    this.api.tex(tex);
    if (this.api.player) this.api.updateSyncPoints();
    return drawn;
  }

  setNotation(on) {
    this.notation = on;
    if (!this.api) return;
    this.api.settings.display.staveProfile = on ? this.at.StaveProfile.ScoreTab : this.at.StaveProfile.Tab;
    this.api.updateSettings();
    this.api.render();
  }

  // The recording's position, in seconds (called on every animation frame
  // while it plays).
  setTime(s) {
    if (this.output && !this.synthOn) this.output.updatePosition(s * 1000);
  }

  playing(on) {
    if (!this.api || this.synthOn || !this.api.player) return;
    if (on) this.api.play(); else this.api.pause();
  }

  // Synthesized playback of the tab's notes (alphaTab's synthesizer).
  setSynth(on) {
    if (!this.api) return;
    this.synthOn = on;
    if (on) this.audio.pause();
    else this.api.stop();
    this.api.settings.player.playerMode = on ? this.at.PlayerMode.EnabledSynthesizer
      : this.at.PlayerMode.EnabledExternalMedia;
    this.output = null;
    this.api.updateSettings();
    if (on) {
      const start = () => { if (this.synthOn) this.api.play(); };
      if (this.api.isReadyForPlayback) start();
      else {
        const off = this.api.playerReady.on(() => { off(); start(); });
      }
    }
  }
}
