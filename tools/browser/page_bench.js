// The page's first view in headless chromium, for bench/web/page.sh:
//
//   node page_bench.js URL RUNS
//
// Each run is a fresh browser profile (an empty cache). It opens URL and
// waits until the network is quiet after the page has loaded alphaTab's
// module (the page starts that once it is usable). Per run: the bytes
// transferred (CDP's encodedDataLength: headers and the body as sent,
// compressed when the server compressed it), the soundfont excluded (it is
// only fetched when the synthesizer is switched on); first contentful paint;
// the page's "wtt:interactive" mark (controls wired, config read) and its
// "wtt:alphatab" mark (alphaTab's module loaded). Prints one JSON object
// with every run and the medians.

'use strict';

const puppeteer = require('puppeteer-core');

const [url, runsArg] = process.argv.slice(2);
const RUNS = Number(runsArg || 5);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function once() {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 900 });
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    const urls = new Map();
    const bytes = new Map();
    cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
    cdp.on('Network.loadingFinished', (e) => bytes.set(e.requestId, e.encodedDataLength));
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => performance.getEntriesByName('wtt:alphatab').length > 0,
      { timeout: 60000 });
    await page.waitForNetworkIdle({ idleTime: 300, timeout: 60000 });
    const t = await page.evaluate(() => {
      const get = (n) => {
        const e = performance.getEntriesByName(n)[0];
        return e ? e.startTime : null;
      };
      return {
        fcp: get('first-contentful-paint'),
        interactive: get('wtt:interactive'),
        alphatab: get('wtt:alphatab'),
      };
    });
    let total = 0;
    let soundfont = 0;
    const files = {};
    for (const [id, n] of bytes) {
      const u = urls.get(id) || '';
      if (/\/soundfont\//.test(u)) { soundfont += n; continue; }
      total += n;
      files[u.replace(/^https?:\/\/[^/]+/, '')] = n;
    }
    return { bytes: total, soundfont_bytes: soundfont, files, ...t };
  } finally {
    await browser.close();
  }
}

(async () => {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once());
  const out = {
    runs,
    page_kb: median(runs.map((r) => r.bytes)) / 1024,
    first_render_ms: median(runs.map((r) => r.fcp)),
    interactive_ms: median(runs.map((r) => r.interactive)),
    alphatab_ms: median(runs.map((r) => r.alphatab)),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
