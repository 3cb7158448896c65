// cuvae dashboard: a thin view over the JSON API of `cuvae serve` (docs/api.md). The page holds
// no model logic: it asks the server for small results (one decoded image, one heat map) and draws.
'use strict';

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

// Tableau 10: distinguishable classes on the latent map and line colours in the charts.
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
                 '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const state = {
  info: null,
  order: [],          // latent dimensions in display order (highest KL first)
  z: [],              // the current latent vector, by dimension
  selected: null,     // {src, caption} of the image the classifier panel works on
  gradcam: null,      // last /api/gradcam response for the selected image
};

// Slider-to-image latency samples (ms), read by tests/browser/dashboard.test.mjs.
window.__sliderLatencies = [];

// ---------------------------------------------------------------- API and status line

class ApiError extends Error {}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)};
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(`${path}: server unreachable (${e.message})`);
  }
  let data = null;
  try { data = await res.json(); } catch (_) { /* reported below */ }
  if (!res.ok) throw new ApiError(`${path}: ${data && data.error ? data.error : 'HTTP ' + res.status}`);
  if (data === null || typeof data !== 'object') throw new ApiError(`${path}: response is not a JSON object`);
  return data;
}

let statusTimer = 0;
function status(msg, kind = 'info') {
  const s = $('#status');
  s.textContent = msg;
  s.className = 'status ' + kind;
  clearTimeout(statusTimer);
  if (kind === 'info' && msg) statusTimer = setTimeout(() => { s.textContent = ''; s.className = 'status'; }, 4000);
}

// Runs an action for a button: disables it meanwhile, reports errors in the status line.
async function action(button, fn) {
  if (button) button.disabled = true;
  if ($('#status').classList.contains('error')) status('');
  try {
    await fn();
  } catch (e) {
    status(e.message, 'error');
  } finally {
    if (button) button.disabled = false;
  }
}

function intInput(sel, lo, hi, name) {
  const v = Number($(sel).value);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new ApiError(`${name} must be an integer in ${lo}..${hi}`);
  return v;
}

const pct = (p) => (100 * p).toFixed(1) + '%';
const className = (k) => (state.info && state.info.classes && state.info.classes[k] !== undefined
  ? state.info.classes[k] : String(k));
const labelText = (k) => (className(k) === String(k) ? String(k) : `${k} ${className(k)}`);

function testIndexMax() {
  const n = state.info && state.info.test_images;
  return n ? n - 1 : -1;
}

// ---------------------------------------------------------------- header

function renderInfo(info) {
  const vae = info.vae;
  const clf = info.classifier;
  const rows = [
    ['dataset', vae.dataset],
    ['model', `${vae.kind === 'cvae' ? 'conditional VAE' : 'VAE'}, ${vae.channels}×${vae.height}×${vae.width}`],
    ['latent', String(vae.latent)],
    ['device', info.device],
    ['classifier', clf ? `ResNet-18 width ${clf.width}, ${clf.classes} classes` : 'none'],
    ['test images', info.test_images ? String(info.test_images) : 'none'],
  ];
  const dl = $('#info');
  dl.replaceChildren();
  for (const [k, v] of rows) dl.append(el('dt', {text: k}), el('dd', {text: v}));
  dl.title = vae.checkpoint || '';
}

// ---------------------------------------------------------------- latent explorer

function buildSliders(info) {
  const D = info.vae.latent;
  const kl = info.vae.kl_per_dim;
  state.order = [...Array(D).keys()];
  if (Array.isArray(kl)) state.order.sort((a, b) => kl[b] - kl[a] || a - b);
  state.z = new Array(D).fill(0);
  const box = $('#sliders');
  box.replaceChildren();
  state.order.forEach((dim, pos) => {
    const klText = Array.isArray(kl) ? `KL ${kl[dim].toFixed(kl[dim] < 0.095 ? 3 : 2)}` : '';
    const slider = el('input', {type: 'range', id: `slider-${pos}`, min: '-3', max: '3', step: '0.01',
                                value: '0', 'data-dim': String(dim), 'aria-label': `z${dim}`});
    const value = el('output', {id: `slider-value-${pos}`, text: '0.00'});
    const row = el('div', {class: 'slider' + (Array.isArray(kl) && kl[dim] < 0.01 ? ' inactive' : ''),
                           title: Array.isArray(kl) ? `dimension ${dim}: mean KL ${kl[dim].toFixed(4)} nats` : ''},
      el('span', {class: 'dim', text: `z${dim}`}), el('span', {class: 'kl', text: klText}), slider, value);
    slider.addEventListener('input', () => {
      const t0 = performance.now();
      state.z[dim] = Number(slider.value);
      value.textContent = state.z[dim].toFixed(2);
      requestDecode(t0);
    });
    box.append(row);
  });
}

// Shows state.z on the sliders (clamped to their range; the decoder gets the exact values).
function syncSliders() {
  state.order.forEach((dim, pos) => {
    $(`#slider-${pos}`).value = String(Math.max(-3, Math.min(3, state.z[dim])));
    $(`#slider-value-${pos}`).textContent = state.z[dim].toFixed(2);
  });
}

// Decode requests are coalesced: at most one in flight; when it returns, the latest z goes next.
const decoder = {inFlight: false, dirty: false, since: null};

function requestDecode(t0 = null) {
  decoder.dirty = true;
  if (t0 !== null && decoder.since === null) decoder.since = t0;  // oldest input not yet shown
  pumpDecode();
}

async function pumpDecode() {
  if (decoder.inFlight || !decoder.dirty) return;
  decoder.inFlight = true;
  decoder.dirty = false;
  const t0 = decoder.since;
  decoder.since = null;
  const body = {z: [state.z.slice()]};
  if (state.info.vae.kind === 'cvae') body.class = Number($('#anchor-class').value);
  try {
    const r = await api('/api/decode', body);
    const img = $('#decoded-img');
    img.src = r.images[0];
    await img.decode();
    if (t0 !== null) {
      const ms = performance.now() - t0;
      window.__sliderLatencies.push(ms);
      $('#decode-time').textContent = `(${ms.toFixed(0)} ms)`;
    }
  } catch (e) {
    status(e.message, 'error');
  } finally {
    decoder.inFlight = false;
    pumpDecode();
  }
}

function gaussian() {
  // Box-Muller: one N(0, 1) draw.
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

function setupLatent() {
  $('#zero').addEventListener('click', () => {
    state.z.fill(0);
    syncSliders();
    $('#encode-source').textContent = '';
    requestDecode();
  });
  $('#random').addEventListener('click', () => {
    state.z = state.z.map(gaussian);
    syncSliders();
    $('#encode-source').textContent = 'z ~ N(0, I)';
    requestDecode();
  });
  $('#encode-run').addEventListener('click', (ev) => action(ev.currentTarget, async () => {
    const index = intInput('#encode-index', 0, testIndexMax(), 'test image #');
    const r = await api('/api/encode', {index});
    state.z = r.mu.slice();
    syncSliders();
    const label = r.label !== undefined ? ` (label ${labelText(r.label)})` : '';
    $('#encode-source').textContent = `z = μ of test image #${index}${label}`;
    const orig = $('#encode-original');
    orig.src = r.image;
    orig.hidden = false;
    orig.dataset.caption = `test image #${index}${label}`;
    $('#encode-original-caption').textContent = `input: test image #${index}${label}`;
    $('#encode-original-caption').hidden = false;
    requestDecode();
  }));
}

// ---------------------------------------------------------------- selection (for the classifier)

function select(src, caption) {
  state.selected = {src, caption};
  state.gradcam = null;
  $('#selected-img').src = src;
  $('#selected-img').alt = caption;
  $('#selected-caption').textContent = caption;
  for (const e of document.querySelectorAll('.is-selected')) e.classList.remove('is-selected');
  $('#classify-result').replaceChildren();
  $('#gradcam-figure').hidden = true;
  if (state.info.classifier && $('#gradcam-toggle').checked) refreshGradcam();
}

// Any image with the class "selectable" selects itself on click (delegated, so new grids work too).
function setupSelection() {
  document.addEventListener('click', (ev) => {
    const img = ev.target.closest('img.selectable');
    if (!img || !img.src) return;
    const caption = img.dataset.caption || img.alt || 'image';
    select(img.src, caption);
    img.classList.add('is-selected');
    if (state.info.classifier) status(`selected ${caption}`);
  });
}

// ---------------------------------------------------------------- class-anchored generation

function setupAnchor(info) {
  const sel = $('#anchor-class');
  info.classes.forEach((name, k) => sel.append(el('option', {value: String(k), text: labelText(k)})));
  const noise = $('#anchor-noise');
  noise.addEventListener('input', () => { $('#anchor-noise-value').textContent = Number(noise.value).toFixed(2); });
  if (info.vae.kind === 'cvae') {
    // A conditional VAE's decoder takes the class too: this picker also conditions the latent explorer.
    sel.addEventListener('change', () => requestDecode());
    $('#encode-source').before(el('span', {class: 'muted', text: 'decoder conditioned on the class picked below ·'}));
  }
  $('#anchor-run').addEventListener('click', (ev) => action(ev.currentTarget, async () => {
    const k = Number(sel.value);
    const n = intInput('#anchor-count', 1, 64, 'count');
    const seed = intInput('#anchor-seed', 0, Number.MAX_SAFE_INTEGER, 'seed');
    const r = await api('/api/anchor', {class: k, n, noise: Number(noise.value), seed});
    const grid = $('#anchor-grid');
    grid.replaceChildren();
    let right = 0;
    r.images.forEach((src, i) => {
      const caption = `class ${labelText(k)} sample ${i + 1}`;
      const fig = el('figure', {}, el('img', {src, class: 'pixel thumb selectable', alt: caption,
                                              'data-caption': caption, title: 'click to select'}));
      if (r.predictions) {
        const p = r.predictions[i];
        right += p.class === k;
        fig.append(el('figcaption', {class: 'prediction' + (p.class === k ? '' : ' mismatch'),
                                     text: `${className(p.class)} · ${pct(p.confidence)}`,
                                     title: `classifier: ${labelText(p.class)} with ${pct(p.confidence)}`}));
      }
      grid.append(fig);
    });
    $('#anchor-summary').textContent = r.predictions
      ? `classifier agrees on ${right} of ${r.images.length} (${pct(right / r.images.length)})`
      : `${r.images.length} samples (no classifier loaded)`;
  }));
}

// ---------------------------------------------------------------- classify, Grad-CAM, drawing

function renderClassification(r) {
  const box = $('#classify-result');
  box.replaceChildren();
  box.append(el('div', {class: 'top'}, el('strong', {text: labelText(r.class)}),
                document.createTextNode(` · ${pct(r.confidence)}`)));
  const bars = el('ol', {class: 'bars'});
  r.probabilities.forEach((p, k) => {
    const fill = el('span', {class: 'fill'});
    fill.style.width = (100 * p).toFixed(2) + '%';
    bars.append(el('li', {class: k === r.class ? 'best' : ''},
      el('span', {class: 'name', text: className(k)}), el('span', {class: 'bar'}, fill),
      el('span', {class: 'p', text: pct(p)})));
  });
  box.append(bars);
}

function showGradcam() {
  const g = state.gradcam;
  const fig = $('#gradcam-figure');
  if (!g || !$('#gradcam-toggle').checked) { fig.hidden = true; return; }
  const view = $('#gradcam-view').value;
  $('#gradcam-img').src = view === 'heatmap' ? g.heatmap : g.overlay;
  $('#gradcam-caption').textContent =
    `${g.layer}, class ${labelText(g.explained_class)} (predicted ${labelText(g.class)} · ${pct(g.confidence)})`;
  fig.hidden = false;
}

let gradcamSeq = 0;
async function refreshGradcam() {
  if (!state.selected) { status('select an image first (click one, pick a test image or draw)', 'error'); return; }
  const seq = ++gradcamSeq;
  const body = {image: state.selected.src, layer: $('#gradcam-layer').value};
  const target = $('#gradcam-class').value;
  if (target !== '') body.class = Number(target);
  try {
    const r = await api('/api/gradcam', body);
    if (seq !== gradcamSeq) return;  // a newer request superseded this one
    state.gradcam = {...r, layer: body.layer};
    showGradcam();
  } catch (e) {
    status(e.message, 'error');
  }
}

function setupDrawing(info) {
  const canvas = $('#draw-canvas');
  const ctx = canvas.getContext('2d');
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let last = null;
  let inked = false;
  const pos = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
  };
  const line = (a, b) => {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 22;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
  };
  canvas.addEventListener('pointerdown', (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    last = pos(ev);
    line(last, last);
    inked = true;
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (!last) return;
    const p = pos(ev);
    line(last, p);
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = null;
    if (inked) select(downsample(canvas, info.vae.width, info.vae.height), 'drawn image');
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  $('#draw-clear').addEventListener('click', () => { clear(); inked = false; });
}

// The drawing as a PNG data URL at the model's size, framed as MNIST frames its digits: the ink's
// bounding box scaled to fit 20×20 (aspect kept) and centred in the W×H image, white on black.
function downsample(canvas, W, H) {
  const {width: cw, height: ch} = canvas;
  const px = canvas.getContext('2d').getImageData(0, 0, cw, ch).data;
  let x0 = cw, y0 = ch, x1 = -1, y1 = -1;
  for (let y = 0; y < ch; ++y) {
    for (let x = 0; x < cw; ++x) {
      if (px[4 * (y * cw + x)] > 16) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  const out = document.createElement('canvas');
  out.width = W;
  out.height = H;
  const o = out.getContext('2d');
  o.fillStyle = '#000';
  o.fillRect(0, 0, W, H);
  if (x1 >= 0) {
    const box = Math.min(W, H) * 20 / 28;
    const s = box / Math.max(x1 - x0 + 1, y1 - y0 + 1);
    const w = (x1 - x0 + 1) * s, h = (y1 - y0 + 1) * s;
    o.imageSmoothingEnabled = true;
    o.imageSmoothingQuality = 'high';
    o.drawImage(canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (W - w) / 2, (H - h) / 2, w, h);
  }
  return out.toDataURL('image/png');
}

function setupClassify(info) {
  if (!info.classifier) {
    $('#classify-missing').hidden = false;
    $('#classify-body').hidden = true;
    return;
  }
  info.classes.forEach((name, k) => $('#gradcam-class').append(el('option', {value: String(k), text: labelText(k)})));
  setupDrawing(info);
  $('#classify-use-index').addEventListener('click', (ev) => action(ev.currentTarget, async () => {
    const index = intInput('#classify-index', 0, testIndexMax(), 'test image #');
    const r = await api('/api/encode', {index});
    const label = r.label !== undefined ? ` (label ${labelText(r.label)})` : '';
    select(r.image, `test image #${index}${label}`);
  }));
  $('#classify-run').addEventListener('click', (ev) => action(ev.currentTarget, async () => {
    if (!state.selected) throw new ApiError('select an image first (click one, pick a test image or draw)');
    const r = await api('/api/classify', {image: state.selected.src});
    renderClassification(r);
  }));
  $('#gradcam-toggle').addEventListener('change', () => {
    if (!$('#gradcam-toggle').checked) { showGradcam(); return; }
    if (state.gradcam) showGradcam(); else refreshGradcam();
  });
  for (const id of ['#gradcam-layer', '#gradcam-class']) {
    $(id).addEventListener('change', () => { state.gradcam = null; if ($('#gradcam-toggle').checked) refreshGradcam(); });
  }
  $('#gradcam-view').addEventListener('change', showGradcam);
}

// ---------------------------------------------------------------- interpolation

function setupInterpolation() {
  $('#interp-run').addEventListener('click', (ev) => action(ev.currentTarget, async () => {
    const max = testIndexMax();
    const from = intInput('#interp-from', 0, max, 'from');
    const to = intInput('#interp-to', 0, max, 'to');
    const steps = intInput('#interp-steps', 2, 64, 'steps');
    const mode = $('#interp-mode').value;
    const r = await api('/api/interpolate', {from, to, steps, mode});
    const row = $('#interp-row');
    row.replaceChildren();
    r.images.forEach((src, i) => {
      const t = r.t ? r.t[i] : i / (r.images.length - 1);
      const caption = `${mode} #${from}→#${to}, t = ${t.toFixed(2)}`;
      row.append(el('figure', {}, el('img', {src, class: 'pixel thumb selectable', alt: caption, 'data-caption': caption}),
                    el('figcaption', {class: 'muted', text: t.toFixed(2)})));
    });
  }));
}

// ---------------------------------------------------------------- canvas helpers

// Sizes a canvas's backing store to its CSS box times the device pixel ratio; returns a context
// drawing in CSS pixels, and the box's width and height.
function fitCanvas(canvas, cssHeight) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400;
  const h = cssHeight;
  canvas.style.height = h + 'px';
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [ctx, w, h];
}

// About n "nice" tick values (1, 2, 5 × 10^k steps) covering [lo, hi].
function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => raw <= s);
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return {ticks, lo: start, hi: end, step};
}

function tickLabel(v, step) {
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(digits, 6));
}

// A line chart with axes, tick labels, axis titles and a legend.
// series: [{name, x: [...], y: [...], color, dash}]
function lineChart(canvas, {title, xlabel, ylabel, series, yFormat}) {
  const [ctx, W, H] = fitCanvas(canvas, 240);
  const m = {l: 62, r: 12, t: 26, b: 40};
  // The legend sits right of the title, or on a line of its own below it when they would overlap.
  ctx.font = '11px system-ui, sans-serif';
  const widths = series.map((s) => ctx.measureText(s.name).width + 30);
  const legendW = widths.reduce((a, b) => a + b, 0);
  ctx.font = '600 12px system-ui, sans-serif';
  const legendOwnLine = W - m.r - legendW < m.l + ctx.measureText(title).width + 16;
  const legendY = legendOwnLine ? 30 : 12;
  if (legendOwnLine) m.t = 46;
  const xs = series.flatMap((s) => s.x), ys = series.flatMap((s) => s.y.filter(Number.isFinite));
  // Epochs are integers: ticks on whole numbers only, and one epoch still gets a readable axis.
  const intX = xs.every(Number.isInteger);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), 6);
  if (intX) {
    xt.lo = Math.min(...xs);
    xt.hi = Math.max(...xs);
    if (xt.hi === xt.lo) { xt.lo -= 1; xt.hi += 1; }
    xt.step = Math.max(1, Math.round(xt.step));
    xt.ticks = [];
    for (let v = Math.ceil(xt.lo / xt.step) * xt.step; v <= xt.hi; v += xt.step) xt.ticks.push(v);
  }
  const yt = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const px = (v) => m.l + (v - xt.lo) / (xt.hi - xt.lo) * (W - m.l - m.r);
  const py = (v) => H - m.b - (v - yt.lo) / (yt.hi - yt.lo) * (H - m.t - m.b);
  ctx.clearRect(0, 0, W, H);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#555';
  ctx.strokeStyle = '#e3e3e3';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of yt.ticks) {
    const y = Math.round(py(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(m.l, y); ctx.lineTo(W - m.r, y); ctx.stroke();
    ctx.fillText(yFormat ? yFormat(v, yt.step) : tickLabel(v, yt.step), m.l - 6, y);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const v of xt.ticks) {
    const x = Math.round(px(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, H - m.b); ctx.lineTo(x, H - m.b + 4); ctx.strokeStyle = '#888'; ctx.stroke();
    ctx.fillText(tickLabel(v, xt.step), x, H - m.b + 6);
  }
  ctx.strokeStyle = '#888';
  ctx.beginPath(); ctx.moveTo(m.l + 0.5, m.t); ctx.lineTo(m.l + 0.5, H - m.b + 0.5); ctx.lineTo(W - m.r, H - m.b + 0.5); ctx.stroke();
  ctx.fillStyle = '#333';
  ctx.fillText(xlabel, (m.l + W - m.r) / 2, H - 16);
  ctx.save();
  ctx.translate(12, (m.t + H - m.b) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText(ylabel, 0, 0);
  ctx.restore();
  ctx.textAlign = 'left';
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.fillText(title, m.l, 6);
  // Series.
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    ctx.setLineDash(s.dash ? [5, 4] : []);
    ctx.beginPath();
    s.x.forEach((x, i) => (i ? ctx.lineTo(px(x), py(s.y[i])) : ctx.moveTo(px(x), py(s.y[i]))));
    ctx.stroke();
    ctx.setLineDash([]);
    if (s.x.length <= 40) s.x.forEach((x, i) => { ctx.beginPath(); ctx.arc(px(x), py(s.y[i]), 2.5, 0, 2 * Math.PI); ctx.fill(); });
  }
  // Legend, top right.
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  let x = legendOwnLine ? m.l : W - m.r - legendW;
  for (const [i, s] of series.entries()) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.setLineDash(s.dash ? [5, 4] : []);
    ctx.beginPath(); ctx.moveTo(x, legendY); ctx.lineTo(x + 18, legendY); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = '#333';
    ctx.fillText(s.name, x + 22, legendY);
    x += widths[i];
  }
}

// ---------------------------------------------------------------- latent map

const embed = {data: null, base: null, pts: [], hover: -1, cache: new Map(), seq: 0};

function drawEmbedding() {
  const d = embed.data;
  const canvas = $('#embed-canvas');
  const [ctx, W, H] = fitCanvas(canvas, Math.min(460, Math.max(300, canvas.clientWidth * 0.75)));
  const pad = 12;
  const minX = Math.min(...d.x), maxX = Math.max(...d.x), minY = Math.min(...d.y), maxY = Math.max(...d.y);
  const s = Math.min((W - 2 * pad) / (maxX - minX || 1), (H - 2 * pad) / (maxY - minY || 1));
  const ox = (W - s * (maxX - minX)) / 2, oy = (H - s * (maxY - minY)) / 2;
  embed.pts = d.x.map((x, i) => [ox + (x - minX) * s, H - oy - (d.y[i] - minY) * s]);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  ctx.globalAlpha = 0.75;
  embed.pts.forEach(([x, y], i) => {
    ctx.fillStyle = PALETTE[d.label[i] % PALETTE.length];
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  });
  ctx.globalAlpha = 1;
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(0.5, 0.5, W - 1, H - 1);
  embed.base = ctx.getImageData(0, 0, canvas.width, canvas.height);
  embed.hover = -1;
}

function embedHover(ev) {
  const canvas = $('#embed-canvas');
  const r = canvas.getBoundingClientRect();
  const mx = ev.clientX - r.left, my = ev.clientY - r.top;
  let best = -1, bestD = 64;  // within 8 CSS pixels
  embed.pts.forEach(([x, y], i) => {
    const dd = (x - mx) ** 2 + (y - my) ** 2;
    if (dd < bestD) { bestD = dd; best = i; }
  });
  if (best === embed.hover) return;
  embed.hover = best;
  const ctx = canvas.getContext('2d');
  ctx.putImageData(embed.base, 0, 0);
  const tip = $('#embed-tip');
  if (best < 0) { tip.hidden = true; return; }
  const [x, y] = embed.pts[best];
  ctx.strokeStyle = '#000';
  ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.stroke();
  const index = embed.data.index[best], label = embed.data.label[best];
  tip.style.left = Math.min(x + 12, r.width - 110) + 'px';
  tip.style.top = Math.max(y - 40, 0) + 'px';
  tip.querySelector('span').textContent = `#${index} · ${labelText(label)}`;
  const img = tip.querySelector('img');
  tip.hidden = false;
  const seq = ++embed.seq;
  const show = (src) => { if (seq === embed.seq) img.src = src; };
  if (embed.cache.has(index)) { show(embed.cache.get(index)); return; }
  img.removeAttribute('src');
  // Wait a moment so that sweeping the mouse across the map does not send a request per point.
  setTimeout(async () => {
    if (seq !== embed.seq) return;
    try {
      const e = await api('/api/encode', {index});
      embed.cache.set(index, e.image);
      show(e.image);
    } catch (err) {
      status(err.message, 'error');
    }
  }, 60);
}

async function setupEmbedding(info) {
  if (!info.embedding) return;
  const d = await api('/api/embedding');
  embed.data = d;
  $('#panel-embed').hidden = false;
  $('#embed-method').textContent = `(${d.method}, ${d.x.length} test images)`;
  const legend = $('#embed-legend');
  const present = [...new Set(d.label)].sort((a, b) => a - b);
  for (const k of present) {
    const sw = el('span', {class: 'swatch'});
    sw.style.background = PALETTE[k % PALETTE.length];
    legend.append(el('span', {class: 'item'}, sw, document.createTextNode(labelText(k))));
  }
  drawEmbedding();
  const canvas = $('#embed-canvas');
  canvas.addEventListener('mousemove', embedHover);
  canvas.addEventListener('mouseleave', () => {
    embed.hover = -1;
    ++embed.seq;
    canvas.getContext('2d').putImageData(embed.base, 0, 0);
    $('#embed-tip').hidden = true;
  });
}

// ---------------------------------------------------------------- evaluation

const charts = [];  // [canvas, options] for redrawing on resize

function addChart(title, xlabel, ylabel, cols, names, opts = {}) {
  const x = cols.epoch;
  const series = names.filter((n) => Array.isArray(cols[n]) && cols[n].length === x.length).map((n, i) => ({
    name: n, x, y: cols[n], color: PALETTE[i % PALETTE.length], dash: n.startsWith('train'),
  }));
  if (!series.length || !x.length) return;
  const canvas = el('canvas', {class: 'chart', 'aria-label': title});
  $('#metrics-charts').append(canvas);
  const o = {title, xlabel, ylabel, series, ...opts};
  charts.push([canvas, o]);
  lineChart(canvas, o);
}

function fmtCell(v) {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(v !== 0 && Math.abs(v) < 0.01 ? 4 : 3);
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function table(caption, header, rows, cls = '') {
  const t = el('table', {class: cls}, el('caption', {text: caption}));
  t.append(el('thead', {}, el('tr', {}, ...header.map((h) => el('th', {text: h})))));
  const body = el('tbody');
  for (const r of rows) body.append(el('tr', {}, ...r.map((c) => el('td', {text: fmtCell(c)}))));
  t.append(body);
  return t;
}

// validation.json of `cuvae validate`: per-class table of the anchored samples, then the summary numbers.
function renderValidation(v) {
  const box = $('#validation');
  box.replaceChildren(el('h3', {text: 'Semantic validation'}));
  const a = v.anchored;
  if (a && Array.isArray(a.per_class) && a.per_class.length) {
    const keys = Object.keys(a.per_class[0]);
    box.append(table(`Class-anchored samples (noise s = ${fmtCell(v.noise)})`, keys,
                     a.per_class.map((r) => keys.map((k) => (k === 'accuracy' ? pct(r[k]) : r[k])))));
  }
  const summary = [];
  for (const part of ['anchored', 'prior', 'reconstructions']) {
    if (!v[part] || typeof v[part] !== 'object') continue;
    for (const [k, val] of Object.entries(v[part])) {
      if (k === 'per_class') continue;
      summary.push([part, k, Array.isArray(val) ? val.join(' ') : val]);
    }
  }
  if (summary.length) box.append(table('Summary', ['images', 'measure', 'value'], summary, 'kv'));
}

async function setupMetrics(info) {
  if (!info.metrics) return;
  const m = await api('/api/metrics');
  $('#panel-metrics').hidden = false;
  if (!info.embedding) $('#panel-metrics').classList.add('wide');  // alone in its row: charts side by side
  if (m.vae && Array.isArray(m.vae.epoch)) {
    addChart('VAE on the test set', 'epoch', 'nats / image', m.vae, ['test_loss', 'test_recon', 'test_kl', 'train_loss']);
  }
  if (m.classifier && Array.isArray(m.classifier.epoch)) {
    addChart('Classifier loss', 'epoch', 'nats / image', m.classifier, ['train_loss', 'test_loss']);
    addChart('Classifier accuracy', 'epoch', 'accuracy', m.classifier, ['train_acc', 'test_acc'],
             {yFormat: (v, step) => tickLabel(100 * v, 100 * step) + '%'});
  }
  if (m.validation) renderValidation(m.validation);
  if (!$('#metrics-charts').children.length && !m.validation) {
    $('#metrics-charts').append(el('p', {class: 'muted', text: 'no metrics in the run folders'}));
  }
}

// ---------------------------------------------------------------- start

async function main() {
  let info;
  try {
    info = await api('/api/info');
  } catch (e) {
    status(e.message, 'error');
    return;
  }
  state.info = info;
  renderInfo(info);
  const max = testIndexMax();
  for (const id of ['#encode-index', '#classify-index', '#interp-from', '#interp-to']) {
    $(id).max = String(Math.max(0, max));
    if (max < 0) $(id).disabled = true;
  }
  if (max < 0) for (const id of ['#encode-run', '#classify-use-index', '#interp-run']) $(id).disabled = true;
  buildSliders(info);
  setupLatent();
  setupSelection();
  setupAnchor(info);
  setupClassify(info);
  setupInterpolation();
  requestDecode();
  // The optional panels load independently; a failure shows in the status line.
  await Promise.all([setupEmbedding(info), setupMetrics(info)].map((p) => p.catch((e) => status(e.message, 'error'))));
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [c, o] of charts) lineChart(c, o);
      if (embed.data) drawEmbedding();
    }, 100);
  });
  document.body.dataset.ready = 'true';
}

main();
