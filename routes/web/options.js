// The option controls: presets, decoding mode, the three thresholds, and
// the tab's instrument, tuning and capo.

// Each preset is a decoding and its thresholds (docs/web.md "Presets").
export const PRESETS = [
  { id: 'guitar', label: 'Guitar (recommended)', mode: 'guitar', onset: 0.5, frame: 0.3, minlen: 50 },
  { id: 'fast', label: 'Fast playing (more, shorter notes)', mode: 'guitar', onset: 0.4, frame: 0.3, minlen: 30 },
  { id: 'clean', label: 'Clean (fewer, surer notes)', mode: 'guitar', onset: 0.6, frame: 0.4, minlen: 100 },
  { id: 'bass', label: 'Bass', mode: 'bass', onset: 0.5, frame: 0.3, minlen: 60 },
  { id: 'official', label: "Basic Pitch's defaults", mode: 'official', onset: 0.5, frame: 0.3, minlen: 128 },
  { id: 'custom', label: 'Custom', custom: true },
];

const INSTRUMENT_LABELS = {
  guitar: 'Guitar (6 strings)',
  guitar7: 'Guitar (7 strings)',
  bass: 'Bass (4 strings)',
  bass5: 'Bass (5 strings)',
  ukulele: 'Ukulele',
};
const INSTRUMENT_ORDER = ['guitar', 'guitar7', 'bass', 'bass5', 'ukulele'];

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

function tuningLabel(name, notes) {
  const words = name.replace(/_/g, ' ');
  return `${words.charAt(0).toUpperCase()}${words.slice(1)} (${notes})`;
}

export class Options {
  constructor(doc, instruments) {
    this.$ = (id) => doc.getElementById(id);
    this.instruments = instruments || {};
    const preset = this.$('preset');
    for (const p of PRESETS) preset.append(option(p.id, p.label));
    const inst = this.$('instrument');
    const names = INSTRUMENT_ORDER.filter((n) => this.instruments[n])
      .concat(Object.keys(this.instruments).filter((n) => !INSTRUMENT_ORDER.includes(n)));
    for (const n of names) inst.append(option(n, INSTRUMENT_LABELS[n] || n));
    if (!names.length) inst.append(option('guitar', INSTRUMENT_LABELS.guitar));
    const capo = this.$('capo');
    for (let i = 0; i <= 12; i++) capo.append(option(String(i), i === 0 ? 'None' : `Fret ${i}`));
    this.fillTunings();
    preset.addEventListener('change', () => this.applyPreset(preset.value));
    inst.addEventListener('change', () => this.fillTunings());
    for (const id of ['onset', 'frame', 'minlen']) {
      this.$(id).addEventListener('input', () => {
        this.showValues();
        this.$('preset').value = 'custom';
      });
    }
    this.$('mode').addEventListener('change', () => { this.$('preset').value = 'custom'; });
    this.applyPreset('guitar');
  }

  fillTunings() {
    const inst = this.$('instrument').value || 'guitar';
    const sel = this.$('tuning');
    const tunings = (this.instruments[inst] && this.instruments[inst].tunings) || { standard: '' };
    sel.replaceChildren();
    const names = Object.keys(tunings).sort((a, b) => (a === 'standard' ? -1 : b === 'standard' ? 1 : a.localeCompare(b)));
    for (const n of names) sel.append(option(n, tuningLabel(n, tunings[n])));
    sel.value = 'standard';
  }

  applyPreset(id) {
    const p = PRESETS.find((x) => x.id === id);
    this.$('preset').value = id;
    if (!p || p.custom) return;
    this.$('mode').value = p.mode;
    this.$('onset').value = String(p.onset);
    this.$('frame').value = String(p.frame);
    this.$('minlen').value = String(p.minlen);
    this.showValues();
  }

  showValues() {
    this.$('onset-out').textContent = Number(this.$('onset').value).toFixed(2);
    this.$('frame-out').textContent = Number(this.$('frame').value).toFixed(2);
    this.$('minlen-out').textContent = String(Number(this.$('minlen').value));
  }

  // The note-extraction options (generate and retune share them).
  decoding() {
    return {
      mode: this.$('mode').value,
      onset_threshold: Number(this.$('onset').value),
      frame_threshold: Number(this.$('frame').value),
      min_note_ms: Number(this.$('minlen').value),
    };
  }

  // Puts stored options back on the controls (a result opened later).
  setDecoding(o) {
    if (!o) return;
    if (o.mode) this.$('mode').value = o.mode;
    if (typeof o.onset_threshold === 'number') this.$('onset').value = String(o.onset_threshold);
    if (typeof o.frame_threshold === 'number') this.$('frame').value = String(o.frame_threshold);
    if (typeof o.min_note_ms === 'number') this.$('minlen').value = String(o.min_note_ms);
    const match = PRESETS.find((p) => !p.custom && p.mode === this.$('mode').value
      && p.onset === Number(this.$('onset').value) && p.frame === Number(this.$('frame').value)
      && p.minlen === Number(this.$('minlen').value));
    this.$('preset').value = match ? match.id : 'custom';
    this.showValues();
  }

  // The tab route's options.
  tab() {
    return {
      instrument: this.$('instrument').value || 'guitar',
      tuning: this.$('tuning').value || 'standard',
      capo: this.$('capo').value || '0',
    };
  }
}
