// pyfw playground: the page. Everything it shows comes from the server's run (no network elsewhere).
"use strict";

const DATASETS = ["circle", "xor", "gauss", "spiral", "moons"];
const REG_DATASETS = ["reg-plane", "reg-gauss"];
const FEATURES = [["x", "X\u2081"], ["y", "X\u2082"], ["xSquared", "X\u2081\u00b2"], ["ySquared", "X\u2082\u00b2"],
                  ["xTimesY", "X\u2081X\u2082"], ["sinX", "sin(X\u2081)"], ["sinY", "sin(X\u2082)"]];
const FEATURE_FN = {x: (a, b) => a, y: (a, b) => b, xSquared: (a, b) => a * a, ySquared: (a, b) => b * b,
                    xTimesY: (a, b) => a * b, sinX: (a, b) => Math.sin(a), sinY: (a, b) => Math.sin(b)};
const LEARNING_RATES = ["0.00001", "0.0001", "0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3", "10"];
const REG_RATES = ["0", "0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3", "10"];
const DROPOUTS = ["0", "0.1", "0.2", "0.3", "0.5"];
const CLASS_COLORS = [[245, 147, 34], [8, 119, 189], [60, 160, 60], [200, 50, 150], [130, 80, 200], [20, 170, 170],
                      [200, 60, 60], [120, 120, 40]];
const DEFAULTS = {dataset: "circle", regDataset: "reg-plane", activation: "tanh", learningRate: "0.03",
                  batchSize: "10", noise: "0", networkShape: "4,2", percTrainData: "50", regularization: "none",
                  regularizationRate: "0", problem: "classification", seed: "0", showTestData: "false",
                  discretize: "false", x: "true", y: "true", xSquared: "false", ySquared: "false",
                  xTimesY: "false", sinX: "false", sinY: "false", optimizer: "sgd", loss: "mse", dropout: "0",
                  classes: "2"};
const MAX_LAYERS = 8, MAX_NEURONS = 32, GRID = 50, NGRID = 16, EXTENT = 6;

let state = {};
let runId = null;
let snap = null;
let points = null;
let pointsVersion = -1;
let polling = false;
let info = null;

const $ = (id) => document.getElementById(id);

function readHash() {
  const s = Object.assign({}, DEFAULTS);
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const i = part.indexOf("=");
    if (i > 0) {
      const key = decodeURIComponent(part.slice(0, i));
      if (key in DEFAULTS) s[key] = decodeURIComponent(part.slice(i + 1));
    }
  }
  if (REG_DATASETS.indexOf(s.regDataset) < 0) s.regDataset = DEFAULTS.regDataset;
  return s;
}

function writeHash() {
  const parts = Object.keys(DEFAULTS).map((k) => k + "=" + encodeURIComponent(state[k]));
  history.replaceState(null, "", "#" + parts.join("&"));
}

function settings() {
  const s = {};
  for (const k of Object.keys(DEFAULTS)) s[k] = state[k];
  return s;
}

async function api(method, path, body) {
  const res = await fetch(path, {method: method, headers: {"Content-Type": "application/json"},
                                 body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function showError(e) { $("error").textContent = e ? String(e.message || e) : ""; }

function layers() { return state.networkShape === "" ? [] : state.networkShape.split(",").map(Number); }
function setLayers(ls) { state.networkShape = ls.join(","); changed(); }

function fillSelect(id, values, labels) {
  const el = $(id);
  el.innerHTML = "";
  values.forEach((v, i) => {
    const o = document.createElement("option");
    o.value = v; o.textContent = labels ? labels[i] : v;
    el.appendChild(o);
  });
}

function buildControls() {
  fillSelect("learningRate", LEARNING_RATES);
  fillSelect("regularizationRate", REG_RATES);
  fillSelect("dropout", DROPOUTS);
  fillSelect("classes", ["2", "3", "4", "5", "6", "7", "8"]);
  fillSelect("activation", info.activations);
  fillSelect("optimizer", info.optimizers);
  for (const [id, list] of [["datasets", DATASETS], ["regDatasets", REG_DATASETS]]) {
    const box = $(id);
    for (const name of list) {
      const b = document.createElement("button");
      b.className = "dataset"; b.dataset.name = name; b.title = name; b.textContent = name.replace("reg-", "");
      b.addEventListener("click", () => {
        if (id === "datasets") state.dataset = name; else state.regDataset = name;
        changed();
      });
      box.appendChild(b);
    }
  }
  for (const id of ["learningRate", "regularizationRate", "dropout", "classes", "activation", "optimizer", "loss",
                    "regularization", "problem"]) {
    $(id).addEventListener("change", () => {
      state[id] = $(id).value;
      if (id === "problem" && state.problem === "regression" && info.regression_losses.indexOf(state.loss) < 0) {
        state.loss = "mse";
      }
      changed();
    });
  }
  for (const id of ["percTrainData", "noise", "batchSize"]) {
    $(id).addEventListener("input", () => { $(id + "-value").textContent = $(id).value; });
    $(id).addEventListener("change", () => { state[id] = $(id).value; changed(); });
  }
  for (const id of ["showTestData", "discretize"]) {
    $(id).addEventListener("change", () => { state[id] = String($(id).checked); writeHash(); render(); });
  }
  $("data-regen-button").addEventListener("click", () => {
    state.seed = String(Math.floor(Math.random() * 4294967296)); changed();
  });
  $("add-layer").addEventListener("click", () => {
    const ls = layers(); if (ls.length < MAX_LAYERS) { ls.push(2); setLayers(ls); }
  });
  $("remove-layer").addEventListener("click", () => { const ls = layers(); ls.pop(); setLayers(ls); });
  $("play-pause-button").addEventListener("click", () => control(snap && snap.playing ? "pause" : "play"));
  $("reset-button").addEventListener("click", () => control("reset"));
  $("next-step-button").addEventListener("click", () => control("step"));
  $("preset-best").addEventListener("click", () => {
    Object.assign(state, {optimizer: "adam", learningRate: "0.01", activation: "tanh", networkShape: "8,8,6",
                          regularization: "none", batchSize: "10", x: "true", y: "true", xSquared: "true",
                          ySquared: "true", xTimesY: "true", sinX: "true", sinY: "true", dropout: "0"});
    if (state.problem === "classification") state.loss = "crossentropy";
    changed();
  });
}

function syncControls() {
  const regression = state.problem === "regression";
  fillSelect("loss", regression ? info.regression_losses : info.losses);
  for (const id of ["learningRate", "regularizationRate", "dropout", "classes", "activation", "optimizer", "loss",
                    "regularization", "problem"]) {
    const el = $(id);
    if (![...el.options].some((o) => o.value === state[id])) {
      const o = document.createElement("option"); o.value = o.textContent = state[id]; el.appendChild(o);
    }
    el.value = state[id];
  }
  for (const id of ["percTrainData", "noise", "batchSize"]) { $(id).value = state[id]; $(id + "-value").textContent = state[id]; }
  $("showTestData").checked = state.showTestData === "true";
  $("discretize").checked = state.discretize === "true";
  $("datasets").style.display = regression ? "none" : "flex";
  $("regDatasets").style.display = regression ? "flex" : "none";
  $("classes-label").style.display = !regression && state.dataset === "spiral" ? "block" : "none";
  document.querySelectorAll(".dataset").forEach((b) => {
    b.classList.toggle("selected", b.dataset.name === state.dataset || b.dataset.name === state.regDataset);
  });
  $("seed-value").textContent = state.seed;
  $("num-layers").textContent = layers().length;
}

async function changed() {
  writeHash();
  syncControls();
  try {
    const s = settings();
    if (state.dataset !== "spiral") s.classes = "2";
    snap = runId === null ? await api("POST", "/api/run", {settings: s})
                          : await api("POST", "/api/run/" + runId, {settings: s});
    if (snap.id) runId = snap.id;
    showError(null);
    buildNetwork();
    await refresh();
  } catch (e) { showError(e); }
}

async function control(action) {
  try {
    snap = await api("POST", "/api/run/" + runId, {action: action});
    showError(null);
    await refresh();
    if (snap.playing && !polling) poll();
  } catch (e) { showError(e); }
}

async function poll() {
  polling = true;
  try {
    while (true) {
      snap = await api("GET", "/api/run/" + runId);
      await refresh();
      if (!snap.playing) break;
      await new Promise((r) => setTimeout(r, 80));
    }
  } catch (e) { showError(e); }
  polling = false;
}

async function refresh() {
  if (snap.version !== pointsVersion) {
    points = await api("GET", "/api/run/" + runId + "/points");
    pointsVersion = points.version;
  }
  render();
  if (!snap.playing) {
    const ex = await api("GET", "/api/run/" + runId + "/export");
    const none = "(step or play first: pyfw train runs at least one epoch; the model file holds the initial network)";
    $("export-command").textContent = ex.command === null ? none : ex.command;
    $("export-python").textContent = ex.python === null ? none : ex.python;
  }
  $("export-model").href = "/api/run/" + runId + "/model";
}

// --- drawing ---

function colorOf(v) {  // v in [-1, 1]: orange (negative) - white - blue (positive)
  v = Math.max(-1, Math.min(1, v === null ? 0 : v));
  const c = v < 0 ? CLASS_COLORS[0] : CLASS_COLORS[1];
  const t = Math.abs(v);
  return [255 + (c[0] - 255) * t, 255 + (c[1] - 255) * t, 255 + (c[2] - 255) * t];
}

function paint(canvas, size, valueAt) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const [r, g, b] = valueAt(i);
    img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
  }
  const tmp = document.createElement("canvas"); tmp.width = tmp.height = size;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

function outputColor(v) {
  const disc = state.discretize === "true";
  if (Array.isArray(v)) {  // more than two classes: [class, score]
    const c = CLASS_COLORS[v[0] % CLASS_COLORS.length];
    const t = disc ? 1 : 0.35 + 0.5 * Math.max(0, Math.min(1, v[1] === null ? 0 : v[1]));
    return [255 + (c[0] - 255) * t, 255 + (c[1] - 255) * t, 255 + (c[2] - 255) * t];
  }
  if (disc && v !== null) v = v > 0 ? 1 : -1;
  return colorOf(v);
}

function pointColor(label) {
  if (snap.regression) return colorOf(label);
  if (snap.classes === 2) return CLASS_COLORS[label === 1 ? 1 : 0];
  return CLASS_COLORS[label % CLASS_COLORS.length];
}

function render() {
  if (!snap) return;
  $("iter-number").textContent = String(snap.epoch).padStart(6, "0").replace(/(\d{3})$/, ",$1");
  $("loss-train").textContent = snap.train_loss === null ? "NaN" : snap.train_loss.toFixed(3);
  $("loss-test").textContent = snap.test_loss === null ? "NaN" : snap.test_loss.toFixed(3);
  $("play-pause-button").classList.toggle("playing", !!snap.playing);
  $("play-pause-button").innerHTML = snap.playing ? "&#10074;&#10074;" : "&#9654;";
  if (snap.error) showError(snap.error);
  const canvas = $("heatmap-canvas");
  paint(canvas, GRID, (i) => outputColor(snap.output[i]));
  if (points) {
    const ctx = canvas.getContext("2d");
    const scale = canvas.width / (2 * EXTENT);
    const sets = [[points.train, "#fff"]];
    if (state.showTestData === "true") sets.push([points.test, "#000"]);
    for (const [list, stroke] of sets) {
      for (const [x, y, label] of list) {
        const [r, g, b] = pointColor(label);
        ctx.beginPath();
        ctx.arc((x + EXTENT) * scale, (EXTENT - y) * scale, 2.5, 0, 2 * Math.PI);
        ctx.fillStyle = `rgb(${r},${g},${b})`; ctx.fill();
        ctx.strokeStyle = stroke; ctx.lineWidth = 1; ctx.stroke();
      }
    }
  }
  drawChart();
  drawNetwork();
}

function drawChart() {
  const c = $("loss-chart"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const h = snap.history;
  if (h.length < 2) return;
  let max = 0;
  for (const [, a, b] of h) max = Math.max(max, a || 0, b || 0);
  if (max <= 0) return;
  const e0 = h[0][0], e1 = h[h.length - 1][0];
  for (const [k, color] of [[1, "#333"], [2, "#999"]]) {
    ctx.beginPath();
    h.forEach((row, i) => {
      const x = (row[0] - e0) / Math.max(1, e1 - e0) * c.width;
      const y = c.height - (row[k] === null ? max : row[k]) / max * (c.height - 2);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.stroke();
  }
}

function buildNetwork() {
  const nodes = $("nodes");
  nodes.innerHTML = "";
  const col = document.createElement("div"); col.className = "layer";
  col.appendChild(Object.assign(document.createElement("div"), {className: "buttons"}));
  for (const [flag, label] of FEATURES) {
    const row = document.createElement("div");
    row.className = "feature" + (state[flag] === "true" ? "" : " off");
    row.title = "click to turn this input on or off";
    const l = document.createElement("label"); l.textContent = label;
    const box = document.createElement("input"); box.type = "checkbox"; box.id = "feature-" + flag;
    box.checked = state[flag] === "true";
    box.addEventListener("change", () => { state[flag] = String(box.checked); changed(); });
    const node = document.createElement("div"); node.className = "node"; node.dataset.feature = flag;
    const cv = document.createElement("canvas"); cv.width = cv.height = NGRID; node.appendChild(cv);
    paint(cv, NGRID, (i) => {
      const a = -EXTENT + (i % NGRID) * 2 * EXTENT / (NGRID - 1), b = EXTENT - Math.floor(i / NGRID) * 2 * EXTENT / (NGRID - 1);
      const v = FEATURE_FN[flag](a, b);
      return colorOf(flag === "xSquared" || flag === "ySquared" ? v / 18 - 1 : flag === "xTimesY" ? v / 36 : flag.startsWith("sin") ? v : v / EXTENT);
    });
    row.append(box, l, node);
    col.appendChild(row);
  }
  nodes.appendChild(col);
  layers().forEach((n, li) => {
    const c = document.createElement("div"); c.className = "layer";
    const buttons = document.createElement("div"); buttons.className = "buttons";
    const minus = document.createElement("button"); minus.textContent = "\u2212"; minus.title = "fewer neurons";
    const plus = document.createElement("button"); plus.textContent = "+"; plus.title = "more neurons";
    minus.addEventListener("click", () => { const ls = layers(); if (ls[li] > 1) { ls[li]--; setLayers(ls); } });
    plus.addEventListener("click", () => { const ls = layers(); if (ls[li] < MAX_NEURONS) { ls[li]++; setLayers(ls); } });
    buttons.append(minus, plus); c.appendChild(buttons);
    for (let k = 0; k < n; k++) {
      const node = document.createElement("div"); node.className = "node"; node.dataset.layer = li; node.dataset.neuron = k;
      const cv = document.createElement("canvas"); cv.width = cv.height = NGRID; node.appendChild(cv);
      c.appendChild(node);
    }
    nodes.appendChild(c);
  });
  const out = document.createElement("div"); out.className = "layer";
  out.appendChild(Object.assign(document.createElement("div"), {className: "buttons"}));
  const node = document.createElement("div"); node.className = "node"; node.dataset.output = "1";
  node.title = "the output (the heatmap on the right, small)";
  const cv = document.createElement("canvas"); cv.width = cv.height = GRID; node.appendChild(cv);
  out.appendChild(node); nodes.appendChild(out);
}

function centre(el, box) {
  const r = el.getBoundingClientRect();
  return [r.left - box.left + r.width / 2, r.top - box.top + r.height / 2, r];
}

function drawNetwork() {
  for (const node of document.querySelectorAll(".node[data-layer]")) {
    const grid = snap.neurons[+node.dataset.layer];
    if (!grid) continue;
    const values = grid[+node.dataset.neuron];
    if (values) paint(node.firstChild, NGRID, (i) => colorOf(values[i]));
  }
  const output = document.querySelector(".node[data-output] canvas");
  if (output) paint(output, GRID, (i) => outputColor(snap.output[i]));
  const svg = $("links"), box = $("network").getBoundingClientRect();
  svg.setAttribute("width", box.width); svg.setAttribute("height", box.height);
  svg.innerHTML = "";
  const columns = [[...document.querySelectorAll(".feature:not(.off) .node")]];
  layers().forEach((n, li) => columns.push([...document.querySelectorAll(`.node[data-layer="${li}"]`)]));
  columns.push([...document.querySelectorAll(".node[data-output]")]);
  snap.weights.forEach((W, l) => {
    const from = columns[l], to = columns[l + 1];
    if (!from || !to) return;
    W.forEach((row, o) => row.forEach((w, i) => {
      if (!from[i] || !to[Math.min(o, to.length - 1)]) return;
      const [x1, y1, r1] = centre(from[i], box), [x2, y2, r2] = centre(to[Math.min(o, to.length - 1)], box);
      const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.setAttribute("x1", x1 + r1.width / 2); line.setAttribute("y1", y1);
      line.setAttribute("x2", x2 - r2.width / 2); line.setAttribute("y2", y2);
      const [r, g, b] = colorOf(w === null ? 0 : Math.max(-1, Math.min(1, w)));
      line.setAttribute("stroke", `rgb(${r},${g},${b})`);
      line.setAttribute("stroke-width", Math.min(6, 0.5 + Math.abs(w || 0) * 2));
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `weight ${w}`;
      line.appendChild(title);
      line.classList.add("link");
      svg.appendChild(line);
    }));
  });
}

async function main() {
  state = readHash();
  try {
    info = await api("GET", "/api/info");
    $("backend").textContent = info.backend;
    buildControls();
    await changed();
  } catch (e) { showError(e); }
}

window.addEventListener("hashchange", () => {
  const s = readHash();
  if (Object.keys(DEFAULTS).some((k) => s[k] !== state[k])) { state = s; changed(); }
});
window.addEventListener("resize", () => { if (snap) drawNetwork(); });
main();
