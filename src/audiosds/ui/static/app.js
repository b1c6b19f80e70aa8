// The audiosds page: forms that queue CLI runs, live progress, and the run folders' files.
"use strict";

const FINISHED = ["completed", "stopped", "failed", "cancelled"];
const POLL_MS = 400;
let SERVER = null;

// -- small helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = { error: `${response.status} ${response.statusText}` }; }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

const postJSON = (path, body) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

function fmtSeconds(s) {
  if (s == null) return "";
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// -- charts -------------------------------------------------------------------------------

const COLOURS = ["#2f5fd0", "#d0742f", "#2f9e5a", "#a23fc4", "#c43f5b", "#3fa8c4", "#8a8f2f", "#555"];

function chart(title, rows, keys) {
  const W = 470, H = 190, L = 52, R = 10, T = 22, B = 24;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("class", "chart");
  svg.dataset.title = title;
  const add = (tag, attrs, text) => {
    const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text != null) n.textContent = text;
    svg.append(n); return n;
  };
  add("text", { x: L, y: 14 }, title);
  const values = keys.flatMap((k) => rows.map((r) => r[k]).filter((v) => v != null && isFinite(v)));
  if (!values.length) { add("text", { x: L, y: H / 2 }, "no values yet"); return svg; }
  let lo = Math.min(...values), hi = Math.max(...values);
  const log = lo > 0 && hi / lo > 100;
  const f = log ? Math.log10 : (v) => v;
  let a = f(lo), b = f(hi);
  if (a === b) { a -= 0.5; b += 0.5; }
  const n = Math.max(rows.length - 1, 1);
  const x = (i) => L + (i / n) * (W - L - R);
  const y = (v) => T + (1 - (f(v) - a) / (b - a)) * (H - T - B);
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#ccc" });
  add("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#ccc" });
  add("text", { x: 4, y: T + 8 }, hi.toPrecision(3));
  add("text", { x: 4, y: H - B }, lo.toPrecision(3) + (log ? " (log)" : ""));
  add("text", { x: W - R - 60, y: H - 6 }, `step ${rows.length}`);
  keys.forEach((key, j) => {
    const pts = [];
    rows.forEach((r, i) => { if (r[key] != null && isFinite(r[key])) pts.push(`${x(i).toFixed(1)},${y(r[key]).toFixed(1)}`); });
    const colour = COLOURS[j % COLOURS.length];
    if (pts.length > 1) add("polyline", { points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 1.5, "data-key": key });
    else if (pts.length === 1) { const [px, py] = pts[0].split(","); add("circle", { cx: px, cy: py, r: 2.5, fill: colour, "data-key": key }); }
    add("text", { x: L + 8 + j * 92, y: T + 12, fill: colour, style: `fill:${colour}` }, key);
  });
  return svg;
}

function chartsFor(task, rows) {
  if (!rows.length) return [];
  const keys = Object.keys(rows[rows.length - 1]).concat(Object.keys(rows[0]));
  if (task === "fm" || task === "impact" || task === "reverb") {
    return [chart("loss", rows, ["loss"]), chart("prompt score", rows, ["score", "best_score"])];
  }
  if (task === "separate" || task === "enhance") {
    const scores = [...new Set(keys.filter((k) => /^score_\d+$/.test(k)))].sort();
    return [chart("reconstruction loss", rows, ["rec_loss"]), chart("prompt score per source", rows, scores)];
  }
  return [];
}

// -- results: the files of a run folder ---------------------------------------------------

function playerLabel(name, info) {
  const params = info.params || {};
  if (name === "initial.wav") return "initial";
  if (name === "audio.wav") return params.scores && params.scores.reported === "best" ? "final (best iterate)" : "final";
  if (name === "mixture_reconstruction.wav") return "reconstruction (sum of the sources)";
  if (params.files && params.files[name]) return `${name.replace(".wav", "")}: ${params.files[name]}`;
  return name;
}

const PLAYER_ORDER = (name) =>
  ["initial.wav", "audio.wav", "generated.wav", "wet.wav", "enhanced.wav"].includes(name) ? 0 :
    name.startsWith("source_") ? 1 : 2;

function renderResults(info) {
  const box = el("div", { class: "results" });
  const stamp = `?v=${Math.round(info.modified * 1000)}`;
  const wavs = info.files.filter((f) => f.name.endsWith(".wav")).sort((p, q) => PLAYER_ORDER(p.name) - PLAYER_ORDER(q.name));
  if (wavs.length) {
    box.append(el("h3", { text: "Listen" }));
    const players = el("div", { class: "players" });
    for (const f of wavs) {
      players.append(el("div", { class: "player", "data-file": f.name },
        el("span", { text: playerLabel(f.name, info) }),
        el("audio", { controls: "", preload: "metadata", src: f.url + stamp }),
        el("img", { class: "spectrogram", loading: "lazy", alt: `spectrogram of ${f.name}`,
          src: f.url.replace(/^\/files\//, "/spectrogram/") + stamp }),
        el("a", { href: f.url, download: `${info.name}-${f.name}`, text: "download" })));
    }
    box.append(players);
  }
  for (const f of info.files.filter((f) => f.name.endsWith(".png"))) {
    box.append(el("h3", { text: "Spectrogram" + (f.name === "spectrogram.png" ? "s: before / after" : "s") }));
    box.append(el("img", { src: f.url + stamp, alt: f.name, "data-file": f.name }));
  }
  const params = info.params && info.params.params;
  if (params && typeof params === "object") {
    box.append(el("h3", { text: "Parameters" }));
    const table = el("table", { class: "params" }, el("tr", {}, el("th", { text: "name" }), el("th", { text: "value" }), el("th", { text: "unit" })));
    for (const [name, p] of Object.entries(params)) {
      if (!p || typeof p !== "object" || !("value" in p)) continue;
      const v = [].concat(p.value).flat().map((x) => (typeof x === "number" ? +x.toPrecision(4) : x)).join(", ");
      table.append(el("tr", {}, el("td", { text: name }), el("td", { text: v }), el("td", { text: p.unit || "" })));
    }
    box.append(table);
  }
  const others = info.files.filter((f) => !f.name.endsWith(".wav") && !f.name.endsWith(".png"));
  if (others.length) {
    box.append(el("h3", { text: "Files" }));
    box.append(el("div", {}, ...others.map((f) => el("a", { href: f.url, target: "_blank", style: "margin-right:1em", text: f.name }))));
  }
  return box;
}

// -- a task tab: its form, its current job ------------------------------------------------

class TaskTab {
  constructor(section) {
    this.section = section;
    this.form = section.querySelector("form");
    this.jobBox = section.querySelector(".job");
    this.cancelButton = this.form.querySelector(".cancel");
    this.tasks = section.dataset.tasks.split(" ");
    this.job = null;
    this.rows = [];
    this.timer = null;
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.run(); });
    this.cancelButton.addEventListener("click", () => this.cancel());
  }

  task() { return this.form.dataset.task === "synth" ? this.form.elements.renderer.value : this.form.dataset.task; }

  formValues() {
    const values = {};
    for (const input of this.form.querySelectorAll("input[name], select[name]")) {
      if (input.closest(".prompt-row") || input.type === "file" || input.name === "renderer") continue;
      values[input.name] = input.type === "checkbox" ? input.checked : input.value;
    }
    return values;
  }

  async run() {
    const runButton = this.form.querySelector(".run");
    runButton.disabled = true;
    try {
      const job = await postJSON("/api/jobs", { task: this.task(), form: this.formValues() });
      this.attach(job);
    } catch (err) {
      this.showRefusal(err.message);
    } finally {
      runButton.disabled = false;
    }
  }

  showRefusal(message) {
    clearTimeout(this.timer);
    this.job = null;
    this.jobBox.hidden = false;
    this.jobBox.replaceChildren(el("div", { class: "error", role: "alert", text: message }));
  }

  async cancel() {
    if (!this.job) return;
    this.cancelButton.disabled = true;
    try { await postJSON(`/api/jobs/${this.job.id}/cancel`, {}); } catch (err) { this.showRefusal(err.message); }
  }

  attach(job) {
    clearTimeout(this.timer);
    this.job = job;
    this.rows = [];
    this.jobBox.hidden = false;
    this.jobBox.replaceChildren(
      el("div", { class: "status-line" },
        el("span", { class: "status", text: job.status }),
        el("progress", { max: 1, value: 0 }),
        el("span", { class: "counter muted" }),
        el("span", { class: "elapsed muted" })),
      el("code", { class: "command", text: job.command }),
      el("div", { class: "error", role: "alert", hidden: "" }),
      el("div", { class: "messages" }),
      el("div", { class: "charts" }),
      el("div", { class: "result-box" }));
    this.poll();
  }

  async poll() {
    const job = this.job;
    if (!job) return;
    let snap;
    try {
      snap = await api(`/api/jobs/${job.id}?since=${this.rows.length}`);
    } catch (err) {
      this.timer = setTimeout(() => this.poll(), 2000);
      return;
    }
    if (this.job !== job) return;
    this.rows.push(...snap.rows);
    this.update(snap);
    if (FINISHED.includes(snap.status)) await this.finish(snap);
    else this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  update(snap) {
    const box = this.jobBox;
    const status = box.querySelector(".status");
    status.textContent = snap.status;
    status.className = `status ${snap.status}`;
    const last = this.rows[this.rows.length - 1];
    const bar = box.querySelector("progress");
    if (last) { bar.max = last.total; bar.value = last.step; }
    if (snap.status === "completed") bar.value = bar.max;
    box.querySelector(".counter").textContent = last ? `step ${last.step} / ${last.total}` : snap.status === "queued" ? "waiting for the job before it" : "starting";
    box.querySelector(".elapsed").textContent = fmtSeconds(snap.elapsed_s);
    box.querySelector(".messages").textContent = snap.messages.filter((m) => !m.startsWith("audiosds: error:")).join("\n");
    const error = box.querySelector(".error");
    error.hidden = !snap.error;
    error.textContent = snap.error || "";
    box.querySelector(".charts").replaceChildren(...chartsFor(snap.task, this.rows));
    this.cancelButton.disabled = FINISHED.includes(snap.status);
  }

  async finish(snap) {
    const box = this.jobBox.querySelector(".result-box");
    if (snap.status === "failed" || snap.status === "cancelled") { box.replaceChildren(); return; }
    try {
      const info = await api(`/api/runs/${encodeURIComponent(snap.folder)}`);
      const children = [renderResults(info)];
      if (info.resumable) {
        children.unshift(el("button", { type: "button", class: "resume", text: "Resume", onclick: async () => {
          try { this.attach(await postJSON(`/api/runs/${encodeURIComponent(info.name)}/resume`, {})); } catch (err) { this.showRefusal(err.message); }
        } }));
      }
      box.replaceChildren(...children);
    } catch (err) {
      box.replaceChildren(el("div", { class: "error", text: err.message }));
    }
  }

  fill(config) {
    // a run's config.yaml back into this form (Runs tab: "open in its tab")
    const f = this.form.elements;
    const set = (name, value) => { if (f[name] && value != null) f[name].value = value; };
    if (f.renderer) set("renderer", config.command);
    set("prompt", config.prompt);
    set("negative", config.negative);
    set("iters", (config.synthesize || config.separate || {}).iters);
    set("seed", config.seed != null ? config.seed : (config.synthesize || config.separate || {}).seed);
    set("mode", (config.sds || {}).mode);
    set("cfg", config.cfg != null ? config.cfg : (config.sds || {}).cfg_scale);
    set("seconds", config.seconds);
    set("steps", config.steps);
    set("method", config.sampler);
  }
}

// -- the separate tab: mixture upload / recording, prompt rows, suggestions -----------------

class SeparateTab extends TaskTab {
  constructor(section) {
    super(section);
    this.mixture = null;
    this.prompts = this.form.querySelector(".prompts");
    this.addRow(); this.addRow();
    this.form.querySelector(".add-prompt").addEventListener("click", () => this.addRow());
    this.form.elements.file.addEventListener("change", (e) => { if (e.target.files[0]) this.upload(e.target.files[0], e.target.files[0].name); });
    this.form.querySelector(".record").addEventListener("click", () => this.toggleRecording());
    this.suggestButton = this.form.querySelector(".suggest");
    this.suggestButton.addEventListener("click", () => this.suggest());
  }

  addRow(prompt = "", negative = "") {
    if (this.prompts.children.length >= 8) return;
    const row = el("div", { class: "prompt-row" },
      el("span", { class: "muted" }),
      el("input", { name: "prompt", placeholder: "what this source is, e.g. saxophone", value: prompt }),
      el("input", { name: "negative", placeholder: "negative (optional)", value: negative }),
      el("button", { type: "button", title: "remove", text: "×", onclick: () => { if (this.prompts.children.length > 2) { row.remove(); this.number(); } } }));
    this.prompts.append(row);
    this.number();
  }

  number() { [...this.prompts.children].forEach((row, i) => { row.firstChild.textContent = `${i + 1}.`; }); }

  formValues() {
    const rows = [...this.prompts.children];
    return {
      ...super.formValues(),
      mixture: this.mixture ? this.mixture.name : "",
      prompts: rows.map((r) => r.querySelector("[name=prompt]").value),
      negatives: rows.map((r) => r.querySelector("[name=negative]").value),
    };
  }

  async upload(blob, name) {
    const status = this.form.querySelector(".upload-status");
    const player = this.form.querySelector(".mixture-player");
    status.className = "upload-status muted";
    status.textContent = `uploading ${name} ...`;
    this.mixture = null;
    player.hidden = true;
    this.suggestButton.disabled = true;
    try {
      const info = await api(`/api/upload?name=${encodeURIComponent(name)}`, { method: "POST", body: blob });
      this.mixture = info;
      status.textContent = `${name}: ${info.seconds} s, ${info.sample_rate} Hz, ${info.channels} channel(s)`;
      player.src = info.url;
      player.hidden = false;
      this.suggestButton.disabled = false;
    } catch (err) {
      status.className = "upload-status error";
      status.setAttribute("role", "alert");
      status.textContent = err.message;
    }
  }

  async toggleRecording() {
    const button = this.form.querySelector(".record");
    if (this.recorder) {
      const { context, stream, node, chunks } = this.recorder;
      this.recorder = null;
      node.disconnect(); stream.getTracks().forEach((t) => t.stop());
      const rate = context.sampleRate;
      await context.close();
      button.textContent = "Record";
      await this.upload(encodeWav(chunks, rate), "recording.wav");
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const context = new AudioContext();
      const source = context.createMediaStreamSource(stream);
      const node = context.createScriptProcessor(4096, 1, 1);
      const chunks = [];
      node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
      source.connect(node); node.connect(context.destination);
      this.recorder = { context, stream, node, chunks };
      button.textContent = "Stop recording";
    } catch (err) {
      const status = this.form.querySelector(".upload-status");
      status.className = "upload-status error";
      status.textContent = `recording: ${err.message}`;
    }
  }

  async suggest() {
    const status = this.form.querySelector(".suggest-status");
    if (!this.mixture) { status.textContent = "upload or record a mixture first"; return; }
    status.className = "suggest-status muted";
    status.textContent = "listening ...";
    this.suggestButton.disabled = true;
    try {
      const result = await postJSON("/api/suggest", { mixture: this.mixture.name, top: 4 });
      const rows = [...this.prompts.children];
      result.overall.slice(0, rows.length).forEach((s, i) => { rows[i].querySelector("[name=prompt]").value = s.prompt; });
      status.textContent = "suggested: " + result.overall.map((s) => `${s.prompt} (${s.score.toFixed(2)})`).join(", ");
    } catch (err) {
      status.className = "suggest-status error";
      status.textContent = err.message;
    } finally {
      this.suggestButton.disabled = false;
    }
  }
}

function encodeWav(chunks, rate) {
  const n = chunks.reduce((s, c) => s + c.length, 0);
  const buffer = new ArrayBuffer(44 + 2 * n);
  const v = new DataView(buffer);
  const text = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  text(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); text(8, "WAVE"); text(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true);
  v.setUint32(28, 2 * rate, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true); text(36, "data"); v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) for (const s of c) { v.setInt16(o, Math.max(-1, Math.min(1, s)) * 32767, true); o += 2; }
  return new Blob([buffer], { type: "audio/wav" });
}

// -- the runs tab -------------------------------------------------------------------------

const TAB_OF = { fm: "synthesize", impact: "synthesize", separate: "separate", generate: "generate" };

async function loadRuns() {
  const list = document.getElementById("run-list");
  const runs = await api("/api/runs");
  list.replaceChildren(...runs.map((r) => el("li", { "data-run": r.name, onclick: () => showRun(r.name) },
    el("div", { text: r.label || r.name }),
    el("div", { class: "meta", text: `${r.command} · ${r.status} · ${new Date(r.modified * 1000).toLocaleString()}` }))));
  if (!runs.length) list.append(el("li", { class: "muted", text: `No runs yet in ${SERVER.runs}.` }));
}

async function showRun(name) {
  for (const li of document.querySelectorAll("#run-list li")) li.classList.toggle("selected", li.dataset.run === name);
  const detail = document.getElementById("run-detail");
  const info = await api(`/api/runs/${encodeURIComponent(name)}`);
  const buttons = el("div", { class: "actions" });
  if (info.resumable) {
    buttons.append(el("button", { type: "button", class: "resume", text: "Resume", onclick: async () => {
      const tab = TABS[TAB_OF[info.command]];
      try { const job = await postJSON(`/api/runs/${encodeURIComponent(name)}/resume`, {}); selectTab(TAB_OF[info.command]); tab.attach(job); } catch (err) { alert(err.message); }
    } }));
  }
  if (TAB_OF[info.command]) {
    buttons.append(el("button", { type: "button", class: "reopen", text: "Open settings in its tab", onclick: () => {
      const config = parseYamlLite(info.config);
      TABS[TAB_OF[info.command]].fill(config); selectTab(TAB_OF[info.command]);
    } }));
  }
  detail.className = "";
  detail.replaceChildren(
    el("h2", { text: info.label || info.name }),
    el("div", { class: "muted", text: `${info.command} · ${info.status} · ${info.name}` }),
    buttons,
    el("div", { class: "charts" }, ...chartsFor(info.command, info.history)),
    renderResults(info),
    el("h3", { text: "Settings (config.yaml)" }),
    el("pre", { class: "config", text: info.config }));
}

function parseYamlLite(text) {
  // enough of YAML for a run's config: top-level scalars and one level of nested scalars
  const out = {}; let section = null;
  for (const line of text.split("\n")) {
    const m = line.match(/^(\s*)([A-Za-z_][\w]*):\s*(.*)$/);
    if (!m) continue;
    const [, indent, key, raw] = m;
    const value = raw === "" ? null : raw === "null" ? null : raw.replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
    if (!indent) { if (raw === "") { out[key] = {}; section = out[key]; } else { out[key] = value; section = null; } }
    else if (section) section[key] = value;
  }
  return out;
}

// -- start --------------------------------------------------------------------------------

const TABS = {};

function selectTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === `tab-${name}`);
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "runs") loadRuns();
}

async function start() {
  SERVER = await api("/api/state");
  document.getElementById("server-info").textContent =
    `v${SERVER.version} · prior ${SERVER.prior}${SERVER.model ? ` (${SERVER.model})` : ""} · runs in ${SERVER.runs}`;
  for (const select of document.querySelectorAll("select[data-choices]")) {
    for (const c of SERVER.choices[select.dataset.choices]) select.append(el("option", { value: c, text: c }));
  }
  TABS.synthesize = new TaskTab(document.getElementById("tab-synthesize"));
  TABS.separate = new SeparateTab(document.getElementById("tab-separate"));
  TABS.generate = new TaskTab(document.getElementById("tab-generate"));
  TABS.separate.suggestButton.hidden = !SERVER.suggest;
  TABS.separate.suggestButton.disabled = true;
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  document.querySelector("#tab-runs .refresh").addEventListener("click", loadRuns);
  // a reload finds each tab's latest job where it is
  for (const tab of Object.values(TABS)) {
    const job = SERVER.jobs.find((j) => tab.tasks.includes(j.task));
    if (job) tab.attach(job);
  }
  const first = location.hash.slice(1);
  selectTab(["synthesize", "separate", "generate", "runs"].includes(first) ? first : "synthesize");
  document.body.dataset.ready = "1";
}

start().catch((err) => { document.body.prepend(el("div", { class: "error", role: "alert", text: `cannot reach the server: ${err.message}` })); });
