// Drives wtt's page (routes/web/) in Debian's chromium through
// puppeteer-core, the way a musician would, against a running wtt stack:
//
//   node page_check.js URL CLIP OUT_DIR
//
// 1. opens the page; 2. uploads CLIP with the file picker; 3. watches the
// progress bar (events counted, values seen); 4. waits for the tab and the
// piano roll; 5. moves the note-start slider with the keyboard until the
// note count changes (a retune, no new task); 6. picks another tuning and
// waits for another tab; 7. downloads the MIDI (OUT_DIR/downloads/);
// 8. reloads and finds the upload in the history. Screenshots of each stage
// go to OUT_DIR/NN-stage.png. Any console error, page error, failed
// request, HTTP error answer or CSP violation is recorded.
//
// Prints one JSON object (the facts the spec checks) on stdout; exits 1
// when a step could not be done (the object says which, in `error`).

'use strict';

const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const [url, clip, outDir] = process.argv.slice(2);
if (!url || !clip || !outDir) {
  console.error('usage: node page_check.js URL CLIP OUT_DIR');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = Number(process.env.PAGE_CHECK_STEP_MS || 60000);

const facts = {
  console_errors: [],
  page_errors: [],
  failed_requests: [],
  http_errors: [],
  csp_violations: [],
  generate_requests: 0,
  retune_requests: 0,
  events_requests: 0,
  screenshots: [],
  stages: [],
};

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function shot(page, name) {
  const file = path.join(outDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  facts.screenshots.push(file);
}

function stage(name) {
  facts.stages.push(name);
  process.stderr.write(`page_check: ${name}\n`);
}

async function main() {
  fs.mkdirSync(path.join(outDir, 'downloads'), { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // --no-sandbox: the spec runs as root in CI, where chromium's sandbox
    // refuses to start; the page is our own, served from 127.0.0.1.
    args: ['--no-sandbox', '--disable-gpu', '--mute-audio',
      '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
}

async function run(browser) {
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.setViewport({ width: 1100, height: 900 });
  let reloading = false;
  // The one refusal the session provokes on purpose (a text file offered
  // as a recording): its 415 and the browser's line about it.
  let expectRefusal = false;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectRefusal && /status of 415/.test(m.text())) return;
    facts.console_errors.push(m.text());
  });
  page.on('pageerror', (e) => facts.page_errors.push(String(e && e.message ? e.message : e)));
  page.on('request', (r) => {
    const u = r.url();
    if (r.method() === 'POST' && u.includes('/transcribe/generate/')) facts.generate_requests += 1;
    if (r.method() === 'POST' && u.includes('/transcribe/retune/')) facts.retune_requests += 1;
    if (u.includes('/transcribe/events/')) facts.events_requests += 1;
  });
  page.on('requestfailed', async (r) => {
    const why = r.failure() ? r.failure().errorText : '';
    // A reload cancels what the old document had open (its stream, the
    // media element's range request): that is the navigation, not a fault.
    if (reloading && why === 'net::ERR_ABORTED') return;
    // The page closes its event stream itself once the stream has told it
    // the task's end (watch.js), which may be before the server ends the
    // response: Chromium reports that as an aborted request. Any other
    // abort of the stream is a fault.
    if (why === 'net::ERR_ABORTED' && r.url().includes('/transcribe/events/')) {
      const status = await page.evaluate(() => {
        const el = document.getElementById('state');
        return el ? el.dataset.status : null;
      }).catch(() => null);
      if (status === 'completed' || status === 'failed') return;
    }
    facts.failed_requests.push(`${r.method()} ${r.url()} ${why}`);
  });
  page.on('response', (r) => {
    if (expectRefusal && r.status() === 415 && r.url().endsWith('/transcribe/upload/')) return;
    if (r.status() >= 400) facts.http_errors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const cdp = await page.createCDPSession();
  const downloads = path.join(outDir, 'downloads');
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, eventsEnabled: true });
  const finished = new Map();
  cdp.on('Browser.downloadWillBegin', (e) => finished.set(e.guid, { name: e.suggestedFilename, state: 'started' }));
  cdp.on('Browser.downloadProgress', (e) => {
    const d = finished.get(e.guid) || {};
    d.state = e.state;
    finished.set(e.guid, d);
  });

  const collectCsp = async () => {
    const v = await page.evaluate(() => window.__csp || []);
    facts.csp_violations.push(...v);
  };

  // 1. open
  stage('open');
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('body[data-ready="1"]');
  facts.limit_text = await page.$eval('#limit', (e) => e.textContent);
  await shot(page, '01-open');

  // A file that is not audio: refused, in words a musician understands.
  stage('refused');
  const notAudio = path.join(outDir, 'not-audio.wav');
  fs.writeFileSync(notAudio, '<html><script>alert(1)</script></html>\n');
  expectRefusal = true;
  await (await page.$('#file')).uploadFile(notAudio);
  await page.click('#go');
  await page.waitForSelector('#upload-error:not([hidden])');
  facts.refusal_text = await page.$eval('#upload-error', (e) => e.textContent);
  await shot(page, '01b-refused');
  expectRefusal = false;

  // 2. upload
  stage('upload');
  const input = await page.$('#file');
  await input.uploadFile(clip);
  facts.chosen_text = await page.$eval('#chosen', (e) => e.textContent);
  await page.click('#go');

  // 3. progress: sample the bar until the result shows
  stage('progress');
  await page.waitForSelector('#progress:not([hidden])');
  const seen = new Set();
  const states = new Set();
  let shotProgress = false;
  const deadline = Date.now() + STEP_MS;
  for (;;) {
    const s = await page.evaluate(() => {
      const bar = document.getElementById('bar');
      return {
        value: bar.hasAttribute('value') ? bar.value : null,
        max: bar.max,
        events: Number(bar.dataset.events || 0),
        state: document.getElementById('state').dataset.status || '',
        text: document.getElementById('progress-text').textContent,
        result: document.body.dataset.result || '',
      };
    });
    if (s.value !== null) seen.add(`${s.value}/${s.max}`);
    if (s.state) states.add(s.state);
    facts.progress_events = s.events;
    if (s.text) facts.progress_text = facts.progress_text || s.text;
    if (!shotProgress && s.events > 0 && s.value < s.max) {
      await shot(page, '02-progress');
      shotProgress = true;
    }
    if (s.result) { facts.id = s.result; break; }
    if (s.state === 'failed') throw new Error(`the task failed: ${s.text}`);
    if (Date.now() > deadline) throw new Error('no result in time');
    await sleep(50);
  }
  facts.bar_values = [...seen];
  facts.states = [...states];

  // 4. the tab and the piano roll
  stage('result');
  await page.waitForSelector('#tab[data-rendered]');
  // alphaTab draws what is in view (lazy loading): look at the tab.
  await page.$eval('#tab', (e) => e.scrollIntoView());
  await page.waitForFunction(() => document.querySelectorAll('#tab svg text').length > 3);
  facts.note_count = Number(await page.$eval('#note-count', (e) => e.textContent));
  facts.roll_inked = await page.$eval('#roll', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let blue = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 120 && d[i] < 120) blue++;
    return blue;
  });
  facts.tab_svg = await page.$$eval('#tab svg', (l) => l.length);
  facts.audio_src = await page.$eval('#audio', (a) => a.getAttribute('src'));
  const tabText = () => page.$eval('#tab', (e) => e.textContent);
  facts.tab_text_before = (await tabText()).slice(0, 4000);
  const taskBefore = await page.evaluate(async (id) => (await (await fetch(`/transcribe/status/${id}/`)).json()).task_id, facts.id);
  await shot(page, '03-result');

  // 5. a threshold slider, by keyboard, until the note count changes
  stage('retune');
  await page.focus('#onset');
  const before = facts.note_count;
  let after = before;
  for (let i = 0; i < 8 && after === before; i++) {
    const was = await page.$eval('#note-count', (e) => e.dataset.ms || '');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction((w) => {
      const e = document.getElementById('note-count');
      return (e.dataset.ms || '') !== w && e.dataset.ms;
    }, {}, was);
    await page.waitForFunction(() => true);
    after = Number(await page.$eval('#note-count', (e) => e.textContent));
  }
  facts.note_count_after = after;
  facts.onset_after = Number(await page.$eval('#onset', (e) => e.value));
  facts.retune_ms = Number(await page.$eval('#note-count', (e) => e.dataset.ms));
  facts.task_id_before = taskBefore;
  facts.task_id_after = await page.evaluate(async (id) => (await (await fetch(`/transcribe/status/${id}/`)).json()).task_id, facts.id);
  // The tab is written again from the re-tuned notes.
  await page.waitForFunction(() => document.getElementById('tab').dataset.notes
    === document.getElementById('note-count').dataset.version);
  await shot(page, '04-retuned');

  // 6. another tuning: the tab changes
  stage('tuning');
  const textBefore = await tabText();
  await page.select('#tuning', 'half_step_down');
  await page.waitForFunction(() => (document.getElementById('tab').dataset.key || '').includes('half_step_down'));
  await page.$eval('#tab', (e) => e.scrollIntoView());
  await page.waitForFunction((t) => document.getElementById('tab').textContent !== t, {}, textBefore);
  facts.tab_key = await page.$eval('#tab', (e) => e.dataset.key);
  facts.tab_changed = (await tabText()) !== textBefore;
  facts.tab_ms = Number(await page.$eval('#tab', (e) => e.dataset.ms));
  await shot(page, '05-tuning');

  // The recording and the cursors: a click on the piano roll seeks the
  // recording, and alphaTab's beat cursor follows it; playing moves both.
  stage('playback');
  const where = () => page.evaluate(() => ({
    t: document.getElementById('audio').currentTime,
    beat: (document.querySelector('#tab .at-cursor-beat') || { style: {} }).style.transform || '',
  }));
  await page.$eval('#roll', (e) => e.scrollIntoView({ block: 'center' }));
  await page.waitForFunction(() => document.getElementById('audio').readyState >= 1);
  const box = await (await page.$('#roll')).boundingBox();
  const beforeSeek = await where();
  await page.mouse.click(box.x + box.width * 0.6, box.y + box.height / 2);
  await page.waitForFunction((t) => Math.abs(document.getElementById('audio').currentTime - t) > 0.5, {},
    beforeSeek.t);
  await sleep(200);
  const afterSeek = await where();
  facts.seek = { from: beforeSeek.t, to: afterSeek.t, cursor_moved: afterSeek.beat !== beforeSeek.beat };
  await page.evaluate(() => new Promise((resolve) => {
    const a = document.getElementById('audio');
    a.addEventListener('seeked', resolve, { once: true });
    a.currentTime = 0.2;
  }));
  const startBeat = (await where()).beat;
  await page.evaluate(() => { document.getElementById('audio').play(); });
  // (headless chromium's audio clock may run slow on a busy machine: the
  // element's time snaps back to what was really played when it pauses)
  await page.waitForFunction(() => document.getElementById('audio').currentTime > 0.8);
  await page.evaluate(() => document.getElementById('audio').pause());
  const played = await where();
  facts.played = { to: played.t, cursor_moved: played.beat !== startBeat };

  // 7. the MIDI download
  stage('download');
  await page.click('#downloads a[data-kind="MIDI"]');
  const dlDeadline = Date.now() + STEP_MS;
  for (;;) {
    const done = [...finished.values()].find((d) => d.state === 'completed');
    if (done) { facts.midi_file = path.join(downloads, done.name); break; }
    const failed = [...finished.values()].find((d) => d.state === 'canceled');
    if (failed) throw new Error('the MIDI download was canceled');
    if (Date.now() > dlDeadline) throw new Error('the MIDI download did not finish');
    await sleep(50);
  }

  // 8. reload: the upload is in the history
  stage('history');
  await collectCsp();
  reloading = true;
  await page.reload({ waitUntil: 'load' });
  reloading = false;
  await page.waitForSelector('body[data-ready="1"]');
  const sel = `#history-list li[data-id="${facts.id}"]`;
  await page.waitForSelector(sel);
  facts.history_text = await page.$eval(sel, (e) => e.textContent);
  // The reloaded page reopens the result named in its address.
  await page.waitForSelector('#tab[data-rendered]');
  await page.$eval('#history', (e) => e.scrollIntoView());
  await shot(page, '06-history');

  // The same page at a phone's width.
  await page.setViewport({ width: 390, height: 844 });
  await sleep(200);
  await shot(page, '07-phone');
  facts.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await collectCsp();
}

main().then(() => {
  process.stdout.write(`${JSON.stringify(facts)}\n`);
}, (e) => {
  facts.error = String(e && e.stack ? e.stack : e);
  process.stdout.write(`${JSON.stringify(facts)}\n`);
  process.exit(1);
});
