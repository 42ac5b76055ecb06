// demo.mjs: the live page. One model instance from nmm_wasm.wasm (through /js/nmm.mjs), stepped
// `ticksPerFrame` ticks per animation frame with run(n); the recorded rows feed ring buffers that
// the three canvases draw: r(t), v(t) over the last 20 ms and the (v, r) phase plane.
//
// URLs are those of wasm/serve.mjs: /js/nmm.mjs, /nmm_wasm.wasm, /models/mlp_p06_1.nmmw.
//
// For tests, window.nmmDemo is updated every frame: { ready, frames, t, lastR, lastV, meanR,
// meanV, params, model, jEff, ticksPerFrame, running, error, colors, log }.

const WASM_URL = "/nmm_wasm.wasm";
const WEIGHTS_URL = "/models/mlp_p06_1.nmmw";
const WRAPPER_URL = "/js/nmm.mjs";

const DT = 0.01; // ms (tau = 1 ms)
const WINDOW_MS = 20; // shown in the time series
const WINDOW = Math.round(WINDOW_MS / DT); // samples in the time series
const TRAIL_EVERY = 2; // phase-plane trail: every 2nd tick ...
const TRAIL = 10000; // ... for the last 200 ms
const MAX_TICKS_PER_FRAME = 8192; // the module's trace capacity
const SLIDERS = ["eta", "J", "p", "I", "noise"];
const DEFAULTS = { eta: -5, J: 15, p: 1, I: 0, noise: 0, sigmaR: 0, seed: 1 };
const COLORS = {
  r: "#c0392b",
  v: "#1f6fb2",
  trail: "rgba(60, 70, 85, 0.28)",
  phase: "rgba(29, 35, 43, 0.8)",
  point: "#c0392b",
  rNull: "#2e8b57",
  vNull: "#8e44ad",
  grid: "#e6e9ee",
  axis: "#5b6573",
  text: "#1d232b",
  mark: "rgba(90, 100, 115, 0.55)",
};
const LABELS = { eta: "η̄", J: "J", p: "p", I: "I", noise: "σ_v", sigmaR: "σ_r", seed: "seed" };

const $ = (id) => document.getElementById(id);

// ---------- state exposed for tests ----------

const demo = {
  ready: false,
  frames: 0,
  t: 0,
  lastR: NaN,
  lastV: NaN,
  meanR: NaN,
  meanV: NaN,
  params: { ...DEFAULTS },
  model: $("model").value,
  jEff: NaN,
  ticksPerFrame: Number($("speed").value),
  running: true,
  error: null,
  colors: COLORS,
  window: { ms: WINDOW_MS, dt: DT },
  log: [],
};
window.nmmDemo = demo;

// ---------- errors ----------

function showError(e, context) {
  const name = e?.name ?? "Error";
  const msg = e?.message ?? String(e);
  const text = `${context ? context + ": " : ""}${name}: ${msg}`;
  demo.error = text;
  const box = $("error");
  box.textContent = text;
  box.hidden = false;
  console.error(text);
}

function clearError() {
  demo.error = null;
  $("error").hidden = true;
}

window.addEventListener("error", (ev) => showError(ev.error ?? ev.message, "uncaught"));
window.addEventListener("unhandledrejection", (ev) => showError(ev.reason, "uncaught (promise)"));

// ---------- ring buffers ----------

class Ring {
  constructor(n) {
    this.a = new Float32Array(n);
    this.n = n;
    this.clear();
  }
  clear() {
    this.len = 0;
    this.head = 0;
  }
  push(x) {
    this.a[this.head] = x;
    this.head = (this.head + 1) % this.n;
    if (this.len < this.n) this.len++;
  }
  /** i-th sample, oldest first. */
  at(i) {
    return this.a[(this.head - this.len + i + this.n) % this.n];
  }
  extent() {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < this.len; i++) {
      const x = this.at(i);
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    return [lo, hi];
  }
  mean() {
    let s = 0;
    for (let i = 0; i < this.len; i++) s += this.at(i);
    return this.len ? s / this.len : NaN;
  }
}

// ---------- simulation state ----------

const sim = {
  nmm: null,
  weights: null,
  model: null,
  kind: demo.model,
  ticks: 0,
  r: new Ring(WINDOW),
  v: new Ring(WINDOW),
  trailR: new Ring(TRAIL),
  trailV: new Ring(TRAIL),
  marks: [], // {t, label} for vertical markers in the time series
};

function clearBuffers() {
  for (const b of [sim.r, sim.v, sim.trailR, sim.trailV]) b.clear();
  sim.marks = [];
  sim.ticks = 0;
  demo.t = 0;
  for (const range of Object.values(ranges)) range.reset();
}

function jEff() {
  const { J, p } = demo.params;
  return sim.kind === "mpr" ? J * p : J;
}

/** Model parameters for the current kind: MLP takes p, MPR gets J -> J p. */
function modelParams() {
  const { eta, J, p } = demo.params;
  return sim.kind === "mpr" ? { eta, J: J * p } : { eta, p, J };
}

function applyParams() {
  if (!sim.model) return;
  for (const [name, value] of Object.entries(modelParams())) sim.model.set(name, value);
  sim.model.input = demo.params.I;
  demo.jEff = jEff();
}

function applyNoise() {
  if (!sim.model) return;
  const { sigmaR, noise, seed } = demo.params;
  sim.model.setNoise(sigmaR, noise, seed);
}

function createModel(kind) {
  if (sim.model) sim.model.destroy();
  sim.model = null;
  sim.kind = kind;
  demo.model = kind;
  clearBuffers();
  sim.model = sim.nmm.create(kind, {
    dt: DT,
    params: modelParams(),
    input: demo.params.I,
    weights: kind === "mlp" ? sim.weights : undefined,
  });
  demo.jEff = jEff();
  applyNoise();
}

// ---------- protocol log ----------

function fmt(x, digits = 3) {
  if (!Number.isFinite(x)) return String(x);
  return (Math.abs(x) < 0.5 * 10 ** -digits ? 0 : x).toFixed(digits);
}

/**
 * Adds a line to the visible log (and a marker in the time series). A slider drag is one line:
 * its entry stays open, updated by each `input` event, until the slider's `change` event.
 */
function logEvent(key, text, { mark = true, open = false } = {}) {
  const t = sim.ticks * DT;
  const last = demo.log[demo.log.length - 1];
  const entry = { t, key, text, open };
  const ol = $("log");
  const line = `t = ${t.toFixed(2)} ms: ${text}`;
  if (last && last.open && last.key === key) {
    demo.log[demo.log.length - 1] = entry;
    ol.lastElementChild.textContent = line;
    const m = sim.marks[sim.marks.length - 1];
    if (m && m.key === key) Object.assign(m, { t, label: text });
    return;
  }
  if (last) last.open = false;
  demo.log.push(entry);
  const li = document.createElement("li");
  li.textContent = line;
  ol.append(li);
  ol.scrollTop = ol.scrollHeight;
  if (mark) sim.marks.push({ t, key, label: text });
}

function closeLogEntry(key) {
  const last = demo.log[demo.log.length - 1];
  if (last && last.key === key) last.open = false;
}

// ---------- controls ----------

function showSliderValues() {
  for (const id of SLIDERS) {
    const digits = id === "p" || id === "noise" || id === "I" ? 2 : 1;
    $(`${id}-val`).textContent = fmt(demo.params[id], digits);
  }
}

function onSlider(id) {
  const value = Number($(id).value);
  const previous = demo.params[id];
  demo.params[id] = value;
  showSliderValues();
  if (!sim.model) return;
  try {
    if (id === "noise") applyNoise();
    else applyParams();
    clearError();
  } catch (e) {
    demo.params[id] = previous; // the module kept its value
    showError(e, `setting ${LABELS[id]} = ${value}`);
    return;
  }
  const extra = sim.kind === "mpr" && (id === "J" || id === "p") ? ` (J·p = ${fmt(jEff(), 3)})` : "";
  logEvent(id, `${LABELS[id]} = ${fmt(value, id === "eta" || id === "J" ? 1 : 2)}${extra}`, { open: true });
  updateReadouts();
}

function onNoiseSetting(id) {
  const raw = $(id).value;
  const value = Number(raw);
  if (id === "seed" && !(raw.trim() !== "" && Number.isSafeInteger(value) && value >= 0)) {
    showError(new Error(`seed must be a non-negative integer, got ${JSON.stringify(raw)}`), "seed");
    return;
  }
  const previous = demo.params[id];
  demo.params[id] = value;
  try {
    applyNoise();
    clearError();
  } catch (e) {
    demo.params[id] = previous; // the module kept its noise settings
    showError(e, `setting ${LABELS[id]} = ${raw}`);
    return;
  }
  logEvent("noise-setting", `noise stream restarted: σ_r = ${demo.params.sigmaR}, seed = ${demo.params.seed}`);
  updateReadouts();
}

function setControls(params) {
  for (const id of SLIDERS) $(id).value = String(params[id]);
  $("sigmaR").value = String(params.sigmaR);
  $("seed").value = String(params.seed);
  Object.assign(demo.params, params);
  showSliderValues();
}

function wireControls() {
  for (const id of SLIDERS) {
    $(id).addEventListener("input", () => onSlider(id));
    $(id).addEventListener("change", () => closeLogEntry(id));
  }
  for (const id of ["sigmaR", "seed"]) $(id).addEventListener("change", () => onNoiseSetting(id));
  $("newseed").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 32));
    onNoiseSetting("seed");
  });
  $("model").addEventListener("change", () => {
    const kind = $("model").value;
    try {
      createModel(kind);
      clearError();
      logEvent("model", `model = ${kind === "mpr" ? "MPR (J·p = " + fmt(jEff(), 3) + ")" : "MLP"}, state reset`);
    } catch (e) {
      showError(e, `creating model ${kind}`);
    }
  });
  $("pause").addEventListener("click", () => {
    demo.running = !demo.running;
    $("pause").textContent = demo.running ? "pause" : "run";
  });
  $("reset").addEventListener("click", () => {
    if (!sim.model) return;
    try {
      sim.model.reset();
      clearBuffers();
      applyNoise(); // restart the noise stream too: a reset run is reproducible
      clearError();
      demo.running = true;
      $("pause").textContent = "pause";
      logEvent("reset", "state reset (t = 0), noise stream restarted");
    } catch (e) {
      showError(e, "reset");
    }
  });
  $("defaults").addEventListener("click", () => {
    setControls(DEFAULTS);
    try {
      applyParams();
      applyNoise();
      clearError();
    } catch (e) {
      showError(e, "defaults");
    }
    logEvent("defaults", "defaults: η̄ = -5, J = 15, p = 1, I = 0, no noise, seed 1");
  });
  $("speed").addEventListener("change", () => {
    demo.ticksPerFrame = Math.min(MAX_TICKS_PER_FRAME, Number($("speed").value));
  });
}

// ---------- drawing ----------

function niceStep(span, n) {
  const raw = span / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

function ticksFor(lo, hi, n) {
  const step = niceStep(hi - lo, n);
  const out = [];
  for (let x = Math.ceil(lo / step - 1e-9) * step; x <= hi + step * 1e-9; x += step) out.push(x);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { ticks: out, digits };
}

/** An axis range that contains a default range and the data; grows at once, shrinks lazily. */
class AutoRange {
  constructor(lo, hi, floor = -Infinity) {
    this.def = [lo, hi];
    this.lo = lo;
    this.hi = hi;
    this.floor = floor;
  }
  update(dlo, dhi) {
    if (!(Number.isFinite(dlo) && Number.isFinite(dhi))) return;
    const pad = 0.06 * Math.max(dhi - dlo, 1e-3);
    let lo = Math.max(this.floor, Math.min(this.def[0], dlo - pad));
    let hi = Math.max(this.def[1], dhi + pad);
    const step = niceStep(hi - lo, 5);
    lo = Math.max(this.floor, Math.floor(lo / step) * step);
    hi = Math.ceil(hi / step) * step;
    if (lo < this.lo || hi > this.hi) {
      this.lo = Math.min(this.lo, lo);
      this.hi = Math.max(this.hi, hi);
    } else if (hi - lo < 0.5 * (this.hi - this.lo)) {
      this.lo = lo;
      this.hi = hi;
    }
  }
  reset() {
    [this.lo, this.hi] = this.def;
  }
}

const ranges = {
  r: new AutoRange(0, 0.5, 0),
  v: new AutoRange(-3, 1),
  pv: new AutoRange(-3, 1),
  pr: new AutoRange(0, 1, 0),
};

function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, Math.round(canvas.clientWidth));
  const h = Math.max(50, Math.round(canvas.clientHeight));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const FONT_BOLD = 'bold 13px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

/** Grid, ticks, labels; returns the data -> pixel maps and the plot rectangle. */
function axes(ctx, w, h, { x0, x1, y0, y1, xlabel, ylabel, title, bottom = 40 }) {
  const m = { l: 58, r: 14, t: 26, b: bottom };
  const pw = w - m.l - m.r;
  const ph = h - m.t - m.b;
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const Y = (y) => m.t + (1 - (y - y0) / (y1 - y0)) * ph;
  ctx.font = FONT;
  ctx.lineWidth = 1;
  const xt = ticksFor(x0, x1, Math.max(3, Math.floor(pw / 80)));
  const yt = ticksFor(y0, y1, Math.max(3, Math.floor(ph / 40)));
  ctx.strokeStyle = COLORS.grid;
  ctx.beginPath();
  for (const x of xt.ticks) {
    ctx.moveTo(Math.round(X(x)) + 0.5, m.t);
    ctx.lineTo(Math.round(X(x)) + 0.5, m.t + ph);
  }
  for (const y of yt.ticks) {
    ctx.moveTo(m.l, Math.round(Y(y)) + 0.5);
    ctx.lineTo(m.l + pw, Math.round(Y(y)) + 0.5);
  }
  ctx.stroke();
  ctx.strokeStyle = COLORS.axis;
  ctx.strokeRect(m.l + 0.5, m.t + 0.5, pw - 1, ph - 1);
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const x of xt.ticks) ctx.fillText(fmt(x, xt.digits), X(x), m.t + ph + 4);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const y of yt.ticks) ctx.fillText(fmt(y, yt.digits), m.l - 5, Y(y));
  ctx.fillStyle = COLORS.text;
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(xlabel, m.l + pw / 2, m.t + ph + 34);
  ctx.save();
  ctx.translate(14, m.t + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(ylabel, 0, 0);
  ctx.restore();
  ctx.font = FONT_BOLD;
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  ctx.fillText(title, m.l, m.t - 6);
  return { X, Y, m, pw, ph };
}

function clip(ctx, a) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(a.m.l, a.m.t, a.pw, a.ph);
  ctx.clip();
}

function drawSeries(canvas, ring, range, color, title, ylabel) {
  const { ctx, w, h } = prepare(canvas);
  range.update(...ring.extent());
  const t1 = Math.max(demo.t, WINDOW_MS);
  const t0 = t1 - WINDOW_MS;
  const a = axes(ctx, w, h, {
    x0: t0,
    x1: t1,
    y0: range.lo,
    y1: range.hi,
    xlabel: "t (ms)",
    ylabel,
    title,
  });
  clip(ctx, a);
  // markers of parameter changes
  ctx.strokeStyle = COLORS.mark;
  ctx.fillStyle = COLORS.axis;
  ctx.font = FONT;
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.setLineDash([3, 3]);
  for (const mk of sim.marks) {
    if (mk.t < t0 || mk.t > t1) continue;
    const x = Math.round(a.X(mk.t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, a.m.t);
    ctx.lineTo(x, a.m.t + a.ph);
    ctx.stroke();
    ctx.fillText(mk.label, x + 3, a.m.t + 3);
  }
  ctx.setLineDash([]);
  // the trace
  const n = ring.len;
  const tEnd = demo.t;
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const x = a.X(tEnd - (n - 1 - i) * DT);
    const y = a.Y(ring.at(i));
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  ctx.stroke();
  ctx.restore();
}

/** MPR's fixed points (tau = 1, Delta = 1, J p) at the current eta and I: {r, v, stable}. */
function mprFixedPoints() {
  const { eta, I } = demo.params;
  const J = demo.params.J * demo.params.p;
  const PI2 = Math.PI * Math.PI;
  // r* solves 1/(4 pi^2 r^2) + eta + I + J r - pi^2 r^2 = 0, v = -1/(2 pi r)
  const f = (r) => 1 / (4 * PI2 * r * r) + eta + I + J * r - PI2 * r * r;
  const fps = [];
  let rPrev = 1e-4;
  let fPrev = f(rPrev);
  for (let k = 1; k <= 2000; k++) {
    const r = 1e-4 * Math.pow(1e5, k / 2000);
    const fr = f(r);
    if (Math.sign(fr) !== Math.sign(fPrev)) {
      let lo = rPrev;
      let hi = r;
      for (let it = 0; it < 60; it++) {
        const mid = 0.5 * (lo + hi);
        if (Math.sign(f(mid)) === Math.sign(f(lo))) lo = mid;
        else hi = mid;
      }
      fps.push(0.5 * (lo + hi));
    }
    rPrev = r;
    fPrev = fr;
  }
  return fps.map((r) => {
    const v = -1 / (2 * Math.PI * r);
    const det = 4 * v * v - 2 * r * (J - 2 * PI2 * r); // trace 4v < 0: stable iff det > 0
    return { r, v, stable: det > 0 };
  });
}

/** MPR (tau = 1, Delta = 1) nullclines and fixed points for eta, J_eff, I. */
function drawNullclines(ctx, a, x0, x1, y0, y1, fixedPoints) {
  const { eta, I } = demo.params;
  const J = demo.params.J * demo.params.p;
  const PI2 = Math.PI * Math.PI;
  ctx.lineWidth = 1.5;
  ctx.setLineDash([6, 4]);
  // dr/dt = 0: r = -1 / (2 pi v), v < 0
  ctx.strokeStyle = COLORS.rNull;
  ctx.beginPath();
  let pen = false;
  for (let k = 0; k <= 400; k++) {
    const v = x0 + ((x1 - x0) * k) / 400;
    const r = v < 0 ? -1 / (2 * Math.PI * v) : NaN;
    if (!(r <= y1 * 4)) {
      pen = false;
      continue;
    }
    if (pen) ctx.lineTo(a.X(v), a.Y(r));
    else ctx.moveTo(a.X(v), a.Y(r));
    pen = true;
  }
  ctx.stroke();
  // dv/dt = 0: v = +-sqrt(pi^2 r^2 - J r - eta - I)
  ctx.strokeStyle = COLORS.vNull;
  for (const sgn of [-1, 1]) {
    ctx.beginPath();
    pen = false;
    for (let k = 0; k <= 600; k++) {
      const r = y0 + ((y1 - y0) * k) / 600;
      const q = PI2 * r * r - J * r - eta - I;
      if (q < 0) {
        pen = false;
        continue;
      }
      const v = sgn * Math.sqrt(q);
      if (pen) ctx.lineTo(a.X(v), a.Y(r));
      else ctx.moveTo(a.X(v), a.Y(r));
      pen = true;
    }
    ctx.stroke();
  }
  ctx.setLineDash([]);
  for (const { r, v, stable } of fixedPoints) {
    ctx.beginPath();
    ctx.arc(a.X(v), a.Y(r), 4.5, 0, 2 * Math.PI);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = COLORS.text;
    if (stable) {
      ctx.fillStyle = COLORS.text;
      ctx.fill();
    } else {
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.stroke();
    }
  }
}

function drawPhase(canvas) {
  const { ctx, w, h } = prepare(canvas);
  const [tvlo, tvhi] = sim.trailV.extent();
  const [vlo, vhi] = sim.v.extent();
  const [trlo, trhi] = sim.trailR.extent();
  const [rlo, rhi] = sim.r.extent();
  const showNull = $("nullclines").checked;
  // the range holds the trajectory and, with the nullclines, MPR's fixed points
  const allFps = showNull ? mprFixedPoints() : [];
  const fps = allFps.filter((f) => f.v > -12); // not the far corners of very low rates
  ranges.pv.update(Math.min(tvlo, vlo, ...fps.map((f) => f.v)), Math.max(tvhi, vhi, ...fps.map((f) => f.v)));
  ranges.pr.update(Math.min(trlo, rlo, ...fps.map((f) => f.r)), Math.max(trhi, rhi, ...fps.map((f) => f.r)));
  const x0 = ranges.pv.lo;
  const x1 = ranges.pv.hi;
  const y0 = ranges.pr.lo;
  const y1 = ranges.pr.hi;
  const a = axes(ctx, w, h, {
    x0,
    x1,
    y0,
    y1,
    xlabel: "v (dimensionless)",
    ylabel: "r (kHz)",
    title: "phase plane: r against v",
    bottom: showNull ? 78 : 60,
  });
  clip(ctx, a);
  if (showNull) drawNullclines(ctx, a, x0, x1, y0, y1, allFps);
  // last 200 ms, faint
  ctx.strokeStyle = COLORS.trail;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let i = 0; i < sim.trailR.len; i++) {
    const x = a.X(sim.trailV.at(i));
    const y = a.Y(sim.trailR.at(i));
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  ctx.stroke();
  // last 20 ms
  ctx.strokeStyle = COLORS.phase;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let i = 0; i < sim.r.len; i++) {
    const x = a.X(sim.v.at(i));
    const y = a.Y(sim.r.at(i));
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  ctx.stroke();
  if (sim.r.len) {
    ctx.fillStyle = COLORS.point;
    ctx.beginPath();
    ctx.arc(a.X(demo.lastV), a.Y(demo.lastR), 5, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.restore();
  // legend under the plot: the trajectory, then MPR's nullclines and fixed points
  ctx.font = FONT;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const rows = [
    [
      [COLORS.phase, "last 20 ms"],
      [COLORS.trail, "last 200 ms"],
      [COLORS.point, "now", "dot"],
    ],
  ];
  if (showNull) {
    rows.push([
      [COLORS.vNull, "MPR dv/dt = 0"],
      [COLORS.rNull, "dr/dt = 0"],
      [COLORS.text, "fixed pts", "fps"],
    ]);
  }
  rows.forEach((items, row) => {
    const y = a.m.t + a.ph + 50 + 17 * row;
    let x = 12;
    for (const [c, label, kind] of items) {
      if (kind === "dot") {
        ctx.fillStyle = c;
        ctx.beginPath();
        ctx.arc(x + 6, y, 4, 0, 2 * Math.PI);
        ctx.fill();
        x += 16;
      } else if (kind === "fps") {
        ctx.strokeStyle = c;
        ctx.lineWidth = 1.5;
        ctx.fillStyle = c;
        ctx.beginPath();
        ctx.arc(x + 5, y, 3.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.fillStyle = "#ffffff";
        ctx.beginPath();
        ctx.arc(x + 16, y, 3.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
        x += 26;
      } else {
        ctx.fillStyle = c;
        ctx.fillRect(x, y - 1.5, 20, 3);
        x += 25;
      }
      ctx.fillStyle = COLORS.text;
      ctx.fillText(label, x, y);
      x += ctx.measureText(label).width + 16;
    }
  });
}

function draw() {
  drawSeries($("plot-r"), sim.r, ranges.r, COLORS.r, "firing rate r(t)", "r (kHz)");
  drawSeries($("plot-v"), sim.v, ranges.v, COLORS.v, "mean membrane potential v(t)", "v (dimensionless)");
  drawPhase($("plot-phase"));
}

// ---------- readouts ----------

function updateReadouts() {
  $("out-t").textContent = demo.t.toFixed(2);
  $("out-r").textContent = fmt(demo.lastR, 4);
  $("out-v").textContent = fmt(demo.lastV, 4);
  $("out-meanr").textContent = fmt(demo.meanR, 4);
  $("out-j").textContent = fmt(jEff(), 3);
  $("out-j-note").textContent =
    sim.kind === "mpr" ? "J·p, MPR's all-to-all weight" : "J, with p = " + fmt(demo.params.p, 2) + " as MLP input";
  const { noise, sigmaR, seed } = demo.params;
  $("out-noise").textContent =
    noise === 0 && sigmaR === 0 ? `off (seed ${seed})` : `σ_v ${noise}, σ_r ${sigmaR}, seed ${seed}`;
  $("out-frames").textContent = String(demo.frames);
  $("out-speed").textContent = `${demo.ticksPerFrame} ticks = ${fmt(demo.ticksPerFrame * DT, 2)} ms per frame`;
}

// ---------- the loop ----------

function stepFrame() {
  const n = demo.ticksPerFrame;
  const rows = sim.model.run(n); // view into wasm memory: read it before the next call
  for (let k = 0; k < n; k++) {
    const r = rows[4 * k];
    const v = rows[4 * k + 1];
    sim.r.push(r);
    sim.v.push(v);
    sim.ticks++;
    if (sim.ticks % TRAIL_EVERY === 0) {
      sim.trailR.push(r);
      sim.trailV.push(v);
    }
  }
  demo.t = sim.ticks * DT;
  if (sim.r.len) {
    demo.lastR = sim.r.at(sim.r.len - 1);
    demo.lastV = sim.v.at(sim.v.len - 1);
  }
  demo.meanR = sim.r.mean();
  demo.meanV = sim.v.mean();
  demo.frames++;
}

function frame() {
  requestAnimationFrame(frame);
  if (sim.model && demo.running) {
    try {
      stepFrame();
    } catch (e) {
      demo.running = false;
      $("pause").textContent = "run";
      showError(e, `at t = ${(sim.ticks * DT).toFixed(2)} ms (press "reset state")`);
    }
  }
  try {
    draw();
  } catch (e) {
    demo.running = false;
    showError(e, "drawing");
  }
  updateReadouts();
}

// ---------- start ----------

async function fetchBytes(url, what) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`fetching ${what} ${url}: HTTP ${resp.status} ${(await resp.text()).trim()}`);
  return new Uint8Array(await resp.arrayBuffer());
}

async function main() {
  setControls(DEFAULTS);
  wireControls();
  updateReadouts();
  draw(); // empty axes until the module runs
  let wrapper;
  try {
    wrapper = await import(WRAPPER_URL);
  } catch (e) {
    showError(e, `loading ${WRAPPER_URL}`);
    return;
  }
  try {
    const [wasm, weights] = await Promise.all([
      fetchBytes(WASM_URL, "the module"),
      fetchBytes(WEIGHTS_URL, "the MLP weights"),
    ]);
    sim.weights = weights;
    sim.nmm = await wrapper.loadNmm(wasm);
    createModel($("model").value);
  } catch (e) {
    showError(e, "starting");
    return;
  }
  logEvent("info", `model = ${sim.kind === "mpr" ? "MPR" : "MLP"}, η̄ = -5, J = 15, p = 1, I = 0, no noise, seed 1`, { mark: false });
  demo.ready = true;
  requestAnimationFrame(frame);
}

main();
