// Re-tuning and re-tabbing speed on the page, for bench/web/retune.sh:
//
//   node retune_bench.js URL CLIP MOVES
//
// Uploads CLIP through the page, waits for its result, then MOVES times
// moves the note-start slider one step (alternately down and up) and reads
// the page's own timings: from the slider's request to the piano roll
// painted with the new notes (#note-count data-ms), and to the tab drawn
// from them (#tab data-ms: the tab route's answers and alphaTab's first
// drawing in view). Then MOVES tuning changes (#tab data-ms). Prints one
// JSON object: every timing, medians and maxima.

'use strict';

const puppeteer = require('puppeteer-core');

const [url, clip, movesArg] = process.argv.slice(2);
const MOVES = Number(movesArg || 10);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const stats = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], max: s[s.length - 1], all: xs };
};

(async () => {
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--mute-audio'] });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(600000);
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.setViewport({ width: 1100, height: 900 });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="1"]');
    await (await page.$('#file')).uploadFile(clip);
    await page.click('#go');
    await page.waitForSelector('body[data-result]');
    await page.waitForSelector('#tab[data-rendered]');
    await page.$eval('#tab', (e) => e.scrollIntoView());
    const notes = Number(await page.$eval('#note-count', (e) => e.textContent));
    const roll = [];
    const retab = [];
    const retabFetch = [];
    const tabFetch = [];
    await page.focus('#onset');
    for (let i = 0; i < MOVES; i++) {
      const v = await page.$eval('#note-count', (e) => e.dataset.version || '');
      await page.keyboard.press(i % 2 === 0 ? 'ArrowLeft' : 'ArrowRight');
      await page.waitForFunction((w) => {
        const c = document.getElementById('note-count');
        return c.dataset.version !== w && document.getElementById('tab').dataset.notes === c.dataset.version;
      }, {}, v);
      roll.push(Number(await page.$eval('#note-count', (e) => e.dataset.ms)));
      retab.push(Number(await page.$eval('#tab', (e) => e.dataset.ms)));
      retabFetch.push(Number(await page.$eval('#tab', (e) => e.dataset.fetchMs)));
    }
    const tunings = ['drop_d', 'half_step_down', 'dadgad', 'open_g', 'standard'];
    const tab = [];
    for (let i = 0; i < MOVES; i++) {
      const name = tunings[i % tunings.length];
      await page.select('#tuning', name);
      await page.waitForFunction((n) => (document.getElementById('tab').dataset.key || '').includes(`/${n}/`), {}, name);
      tab.push(Number(await page.$eval('#tab', (e) => e.dataset.ms)));
      tabFetch.push(Number(await page.$eval('#tab', (e) => e.dataset.fetchMs)));
    }
    const out = {
      notes,
      retune_roll_ms: stats(roll),
      retune_tab_ms: stats(roll.map((r, i) => r + retab[i])),
      tuning_tab_ms: stats(tab),
      retune_tab_fetch_ms: stats(retabFetch),
      tuning_tab_fetch_ms: stats(tabFetch),
      errors,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
