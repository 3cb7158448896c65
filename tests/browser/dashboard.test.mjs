// Real-browser test of the `cuvae serve` dashboard (apps/serve/web) with Chromium and playwright-core.
// Usage: node tests/browser/dashboard.test.mjs BASE_URL SCREENSHOT_DIR
// Prints one line per check; exits 1 with a message on the first failure. tests/browser/run.sh starts
// the server with a tiny VAE and classifier and runs this.
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node tests/browser/dashboard.test.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
const origin = new URL(base).origin;
const P95_LIMIT_MS = Number(process.env.CUVAE_SLIDER_P95_MS || 50);  // override only on a loaded machine
const STEP_TIMEOUT_MS = 30000;

class CheckFailed extends Error {}
const ok = (msg) => console.log(`ok    ${msg}`);
const info = (msg) => console.log(`info  ${msg}`);
function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

const problems = [];     // console errors, page errors, failed or foreign requests, dialogs
let expectErrors = false;  // set while a step provokes an error on purpose

async function main() {
  fs.mkdirSync(shots, {recursive: true});
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({viewport: {width: 1400, height: 900}});
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('console', (m) => {
      if (m.type() === 'error' && !expectErrors) problems.push(`console error: ${m.text()} (${m.location().url || '?'})`);
    });
    page.on('pageerror', (e) => problems.push(`uncaught exception in the page: ${e.message}`));
    page.on('dialog', (d) => { problems.push(`dialog (${d.type()}): ${d.message()}`); d.dismiss(); });
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) {
        problems.push(`request to something other than the server: ${u}`);
      }
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`));
    page.on('response', (r) => {
      if (r.status() >= 400 && !expectErrors) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
    });
    const noProblems = (step) => check(problems.length === 0, `${step}: ${problems.join('; ')}`);

    // 1. Load: /api/info fills the header, the sliders appear, the first decode arrives.
    await page.goto(base + '/', {waitUntil: 'load'});
    await page.waitForSelector('body[data-ready="true"]');
    const infoJson = await page.evaluate(() => fetch('/api/info').then((r) => r.json()));
    const header = await page.innerText('#info');
    check(header.includes(infoJson.vae.dataset) && header.includes(String(infoJson.vae.latent)) &&
          header.includes(infoJson.device), `header shows dataset, latent size and device: got "${header}"`);
    const nSliders = await page.locator('input[id^="slider-"]').count();
    check(nSliders === infoJson.vae.latent, `one slider per latent dimension: ${nSliders} != ${infoJson.vae.latent}`);
    const kl = infoJson.vae.kl_per_dim;
    if (Array.isArray(kl)) {
      const dims = await page.$$eval('input[id^="slider-"]', (els) => els.map((e) => Number(e.dataset.dim)));
      const sorted = dims.every((d, i) => i === 0 || kl[dims[i - 1]] >= kl[d]);
      check(sorted, 'sliders ordered by kl_per_dim, descending');
    }
    await page.waitForFunction(() => document.querySelector('#decoded-img').naturalWidth > 0);
    noProblems('page load');
    ok(`page loads: header "${header.replace(/\s+/g, ' ').trim()}", ${nSliders} sliders by KL`);
    await page.screenshot({path: path.join(shots, 'dashboard-initial.png'), fullPage: true});

    // 2. A slider move decodes a new image: compare the pixels before and after.
    const pixels = () => page.evaluate(() => {
      const img = document.querySelector('#decoded-img');
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
    });
    const settle = () => page.evaluate(async () => {
      // Waits until no new slider latency sample arrived for 300 ms (the coalesced decodes are done).
      let n = -1;
      while (n !== window.__sliderLatencies.length) {
        n = window.__sliderLatencies.length;
        await new Promise((r) => setTimeout(r, 300));
      }
    });
    const before = await pixels();
    await page.evaluate(async () => {
      const s = document.querySelector('#slider-0');
      for (const v of [0.5, 1, 1.5, 2, 2.5, 3]) {
        s.value = String(v);
        s.dispatchEvent(new Event('input', {bubbles: true}));
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    await page.waitForFunction(() => window.__sliderLatencies.length > 0);
    await settle();
    const after = await pixels();
    let changed = 0;
    for (let i = 0; i < after.length; i += 4) changed += after.slice(i, i + 4).some((v, j) => v !== before[i + j]);
    check(before.length === after.length && changed > 0, 'decoded image changes when slider 0 moves to 3');
    noProblems('slider');
    ok(`slider move redraws the decoded image (${changed} of ${after.length / 4} pixels changed)`);

    // 2b. "random prior draw" and "zero" set every slider and decode.
    await page.click('#random');
    await page.waitForFunction(() => [...document.querySelectorAll('input[id^="slider-"]')].filter((e) => Number(e.value) !== 0).length > 1);
    await page.click('#zero');
    await page.waitForFunction(() => [...document.querySelectorAll('input[id^="slider-"]')].every((e) => Number(e.value) === 0));
    noProblems('random / zero');
    ok('"random prior draw" sets the sliders, "zero" resets them');

    // 3. Class-anchored generation for class 3 with the classifier's predictions.
    await page.selectOption('#anchor-class', '3');
    await page.click('#anchor-run');
    await page.waitForFunction(() => document.querySelectorAll('#anchor-grid img').length > 0 &&
                                     !document.querySelector('#anchor-run').disabled);
    const nImages = await page.locator('#anchor-grid img').count();
    const preds = await page.$$eval('#anchor-grid .prediction', (els) => els.map((e) => e.textContent));
    const want = Number(await page.inputValue('#anchor-count'));
    check(nImages === want, `anchor grid has ${want} images: got ${nImages}`);
    if (infoJson.classifier) {
      check(preds.length === nImages, `every anchored image has a .prediction: ${preds.length} of ${nImages}`);
      check(preds.every((t) => /^.+ · \d+(\.\d)?%$/.test(t)), `predictions read "class · confidence%": ${preds[0]}`);
    }
    noProblems('anchor');
    const agree = preds.filter((t) => t.startsWith(infoJson.classes[3] + ' ')).length;
    ok(`anchor class 3: ${nImages} images, ${preds.length} predictions (${agree} say "${infoJson.classes[3]}"), e.g. "${preds[0]}"`);

    if (infoJson.classifier) {
      // 4. Grad-CAM overlay of a selected (clicked) anchored image.
      await page.click('#anchor-grid img >> nth=0');
      await page.waitForFunction(() => document.querySelector('#selected-img').naturalWidth > 0);
      await page.check('#gradcam-toggle');
      await page.waitForFunction(() => {
        const img = document.querySelector('#gradcam-img');
        return img.src.startsWith('data:image/png') && img.complete && img.naturalWidth > 0 && img.offsetWidth > 0;
      });
      const camCaption = await page.textContent('#gradcam-caption');
      noProblems('Grad-CAM');
      ok(`Grad-CAM overlay shown for the selected image (${camCaption})`);
      await page.selectOption('#gradcam-layer', 'layer3');
      await page.waitForFunction(() => document.querySelector('#gradcam-caption').textContent.startsWith('layer3'));
      noProblems('Grad-CAM layer3');
      ok('Grad-CAM layer switch to layer3 redraws the map');

      // 4b. A test image picked by index becomes the selected image.
      await page.fill('#classify-index', '1');
      await page.click('#classify-use-index');
      await page.waitForFunction(() => document.querySelector('#selected-caption').textContent.startsWith('test image #1'));
      noProblems('select test image');
      ok(`test image by index selected: ${await page.textContent('#selected-caption')}`);

      // 5. Draw a stroke with the mouse and classify the drawing.
      const box = await page.locator('#draw-canvas').boundingBox();
      const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
      await page.mouse.move(...at(0.3, 0.25));
      await page.mouse.down();
      for (const [fx, fy] of [[0.7, 0.25], [0.62, 0.45], [0.55, 0.6], [0.5, 0.8]]) {
        await page.mouse.move(...at(fx, fy), {steps: 8});
      }
      await page.mouse.up();
      const selected = await page.textContent('#selected-caption');
      check(selected === 'drawn image', `the drawing becomes the selected image: "${selected}"`);
      await page.click('#classify-run');
      await page.waitForSelector('#classify-result .top');
      const top = (await page.textContent('#classify-result .top')).trim();
      const bars = await page.locator('#classify-result .bars li').count();
      check(bars === infoJson.classifier.classes, `one probability bar per class: ${bars}`);
      noProblems('classify');
      ok(`drawn stroke classified: ${top} (${bars} bars)`);
    } else {
      const missing = await page.isVisible('#classify-missing');
      check(missing, 'without a classifier the panel says so');
      ok('no classifier: the panel says the server runs without one');
    }

    // 6. An invalid input shows in the status line (no alert).
    expectErrors = true;
    await page.fill('#encode-index', '99999999');
    await page.click('#encode-run');
    await page.waitForFunction(() => document.querySelector('#status').classList.contains('error'));
    const statusText = await page.textContent('#status');
    expectErrors = false;
    await page.fill('#encode-index', '0');
    noProblems('status line');
    ok(`errors show in the status line: "${statusText}"`);

    // 7. Interpolation between two test images.
    if (infoJson.test_images) {
      await page.fill('#interp-steps', '8');
      await page.selectOption('#interp-mode', 'slerp');
      await page.click('#interp-run');
      await page.waitForFunction(() => document.querySelectorAll('#interp-row img').length === 8);
      noProblems('interpolate');
      ok('interpolation (slerp, 8 steps) shows a row of 8 images');
      await page.click('#encode-run');
      await page.waitForFunction(() => document.querySelector('#encode-source').textContent.includes('#0'));
      noProblems('encode');
      ok(`encode test image #0 sets the sliders: ${await page.textContent('#encode-source')}`);
    }

    // 8. Latent map hover and evaluation charts, when the server has them.
    if (infoJson.embedding) {
      await page.waitForSelector('#panel-embed:not([hidden])');
      await page.locator('#embed-canvas').scrollIntoViewIfNeeded();
      const pt = await page.evaluate(() => {
        const r = document.querySelector('#embed-canvas').getBoundingClientRect();
        const [x, y] = embed.pts[0];
        return [r.left + x, r.top + y];
      });
      await page.mouse.move(pt[0], pt[1]);
      await page.waitForFunction(() => document.querySelector('#embed-tip img').naturalWidth > 0);
      noProblems('latent map');
      ok(`latent map hover shows the test image (${await page.textContent('#embed-tip span')})`);
    }
    if (infoJson.metrics) {
      await page.waitForSelector('#panel-metrics:not([hidden])');
      const nCharts = await page.locator('#metrics-charts canvas').count();
      check(nCharts > 0, 'metrics panel has at least one chart');
      ok(`evaluation panel: ${nCharts} chart(s), validation table: ${await page.locator('#validation table').count() > 0}`);
    }

    await page.screenshot({path: path.join(shots, 'dashboard.png'), fullPage: true});
    if (infoJson.embedding) await page.locator('#panel-embed').screenshot({path: path.join(shots, 'latent-map-hover.png')});
    ok(`screenshots in ${shots}`);

    // 9. Latency: 40 clicks along a slider's track, each waiting for its image.
    await page.evaluate(() => { window.__sliderLatencies.length = 0; performance.clearResourceTimings(); });
    await page.mouse.move(0, 0);
    await page.locator('#slider-1').scrollIntoViewIfNeeded();
    const track = await page.locator('#slider-1').boundingBox();
    for (let i = 0; i < 40; ++i) {
      const fx = 0.05 + 0.9 * ((i * 17) % 40) / 39;  // 40 distinct positions in a scrambled order
      await page.mouse.click(track.x + fx * track.width, track.y + track.height / 2);
      await page.waitForFunction((n) => window.__sliderLatencies.length >= n, i + 1);
    }
    const lat = await page.evaluate(() => window.__sliderLatencies.slice());
    const sorted = lat.slice().sort((a, b) => a - b);
    const p95 = sorted[Math.ceil(0.95 * sorted.length) - 1];
    const median = sorted[Math.floor(sorted.length / 2)];
    console.log(`slider latency p95: ${p95.toFixed(1)} ms (n=${lat.length}), median ${median.toFixed(1)} ms`);
    // Where the time goes: the browser's fetch timing and the server's own Server-Timing (when sent).
    const split = await page.evaluate(() => {
      const med = (a) => (a.length ? a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)] : NaN);
      const e = performance.getEntriesByType('resource').filter((r) => r.name.endsWith('/api/decode')).slice(-40);
      const app = e.flatMap((r) => r.serverTiming.filter((t) => t.name === 'app').map((t) => t.duration));
      return {fetch: med(e.map((r) => r.responseEnd - r.startTime)), wait: med(e.map((r) => r.responseStart - r.requestStart)),
              server: med(app)};
    });
    info(`decode request medians: fetch ${split.fetch.toFixed(1)} ms, request sent to first byte ${split.wait.toFixed(1)} ms` +
         (Number.isFinite(split.server) ? `, server work ${split.server.toFixed(1)} ms (Server-Timing)` : ''));
    noProblems('latency');
    check(lat.length === 40, `40 latency samples: got ${lat.length}`);
    check(p95 <= P95_LIMIT_MS, `slider latency p95 ${p95.toFixed(1)} ms is over ${P95_LIMIT_MS} ms`);
    ok(`slider latency p95 within ${P95_LIMIT_MS} ms`);
  } finally {
    await browser.close();
  }
}

main().then(() => {
  console.log('PASS dashboard');
}, (e) => {
  console.error(`FAIL ${e instanceof CheckFailed ? '' : '(exception) '}${e.message}`);
  if (problems.length) console.error(`page problems: ${problems.join('; ')}`);
  process.exit(1);
});
