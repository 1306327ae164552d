// tunebench dashboard: polls the JSON API of the server and draws with plotly (served locally).
"use strict";
const PAGE = document.body.dataset.page;
const ID = document.body.dataset.id;
const main = document.getElementById("main");
const STYLES = {running: "solid", completed: "solid", stopped: "dot", paused: "dash", failed: "dot"};
const COLORS = {running: "#1f77b4", completed: "#2ca02c", stopped: "#7f7f7f", paused: "#ff7f0e", failed: "#d62728"};

function esc(s) {
  return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g,
    c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function num(v) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return esc(v);
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(5));
}
function ago(t) {
  if (!t) return "";
  const s = Math.max(0, Date.now() / 1000 - t);
  return s < 90 ? `${s.toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago` : new Date(t * 1000).toLocaleString();
}
// an id (folders joined by "/") as a URL path: each folder name encoded
function idPath(id) { return String(id).split("/").map(encodeURIComponent).join("/"); }
function badge(state) { return `<span class="badge ${esc(state)}">${esc(state)}</span>`; }
function stamp() { document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString(); }
async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}
function poll(fn, ms) {
  const run = async () => {
    try { await fn(); stamp(); } catch (e) { console.warn("tunebench dashboard: " + e.message); }
    setTimeout(run, ms);
  };
  run();
}

// -- overview -------------------------------------------------------------------------------------
async function overview() {
  const data = await getJSON("/api/experiments");
  const rows = data.experiments.map(e => {
    if (e.error) return `<tr><td><a href="/experiments/${idPath(e.id)}">${esc(e.id)}</a></td><td colspan="7" class="error">${esc(e.error)}</td></tr>`;
    const st = e.status;
    const who = st.holder_text ? `<div class="muted">${esc(st.holder_text)}</div>` : (st.reason ? `<div class="muted">${esc(st.reason)}</div>` : "");
    const trials = Object.entries(e.trials).map(([k, n]) => `${n} ${esc(k)}`).join(", ");
    return `<tr data-id="${esc(e.id)}"><td><a href="/experiments/${idPath(e.id)}">${esc(e.id)}</a></td><td>${badge(st.state)}${who}</td>
      <td>${esc(e.benchmark || e.script || "")}</td><td>${esc(e.method)}</td><td>${e.n_trials}: ${trials}</td>
      <td class="num">${num(e.best)}</td><td>${esc(e.metrics.join(", "))}</td><td>${ago(e.last_activity)}</td></tr>`;
  }).join("");
  const grids = data.grids.map(g => `<li><a href="/grids/${idPath(g.id)}">${esc(g.tag)}</a> <span class="muted">${esc(g.id)}, ${g.n_experiments} experiments</span></li>`).join("");
  main.innerHTML = `<h2>Experiments (${data.experiments.length})</h2>
    <table id="experiments"><thead><tr><th>experiment</th><th>status</th><th>benchmark / script</th><th>method</th>
    <th>trials</th><th>best</th><th>metric</th><th>last activity</th></tr></thead><tbody>${rows}</tbody></table>
    <h2>Grids (${data.grids.length})</h2><ul id="grids">${grids || "<li class='muted'>none</li>"}</ul>
    <p class="muted">roots: ${data.roots.map(esc).join(", ")}</p>`;
}

// -- one experiment -------------------------------------------------------------------------------
let built = false;
function layout(title, x, y, extra) {
  return Object.assign({title: {text: title, font: {size: 14}}, margin: {l: 60, r: 20, t: 40, b: 45},
    xaxis: {title: {text: x}}, yaxis: {title: {text: y}}, legend: {orientation: "h", y: -0.25}}, extra || {});
}
function buildExperiment(d) {
  const front = d.pareto_front ? `<div id="front" class="chart"></div>` : "";
  main.innerHTML = `<div id="summary"></div>
    <div class="charts"><div id="best" class="chart"></div><div id="curves" class="chart"></div>
    <div id="parcoords" class="chart"></div>${front}</div>
    <h2>Trials</h2><div class="scroll"><table id="trials"><thead><tr><th>trial</th><th>status</th><th>config</th>
    <th>${esc(d.resource_attr || "resource")} reached</th><th>last ${esc(d.metric)}</th><th>best ${esc(d.metric)}</th></tr></thead>
    <tbody></tbody></table></div>`;
  built = true;
}
function parcoords(d) {
  const rows = d.trial_table.filter(r => r.best !== null);
  if (!rows.length) return [];
  // parameters with one value (constants of the space) say nothing: left out
  const keys = Object.keys(rows[0].config).filter(k => new Set(rows.map(r => String(r.config[k]))).size > 1);
  const dims = keys.map(k => {
    const vals = rows.map(r => r.config[k]);
    if (vals.every(v => typeof v === "number")) return {label: k, values: vals};
    const cats = [...new Set(vals.map(String))];
    return {label: k, values: vals.map(v => cats.indexOf(String(v))), tickvals: cats.map((_, i) => i), ticktext: cats};
  });
  dims.push({label: d.metric, values: rows.map(r => r.best)});
  return [{type: "parcoords", dimensions: dims,
    line: {color: rows.map(r => r.best), colorscale: "Viridis", reversescale: d.mode === "max", showscale: true}}];
}
async function experiment() {
  const d = await getJSON("/api/experiments/" + idPath(ID));
  if (!built) buildExperiment(d);
  const st = d.status;
  const time = d.simulated ? "simulated time (s)" : "tuning time (s)";
  document.getElementById("summary").innerHTML = `<h2>${esc(d.benchmark || d.script || d.path)} · ${esc(d.method)} ${badge(st.state)}</h2>
    <p class="muted">${esc(d.path)} — ${esc(st.holder_text || st.reason || "")} — ${d.n_trials} trials, ${d.n_results} results,
    ${num(d.elapsed_time)} s of ${esc(time)}; best ${esc(d.metric)} (${esc(d.mode)}): ${num(d.best)}
    ${d.best_trial_id !== null ? "(trial " + d.best_trial_id + ")" : ""}</p>`;
  document.querySelector("#trials tbody").innerHTML = d.trial_table.map(r => `<tr><td>${r.trial_id}</td>
    <td>${badge(r.status)}${r.error ? `<div class="muted">${esc(r.error)}</div>` : ""}</td>
    <td class="config">${Object.entries(r.config).map(([k, v]) => esc(k) + "=" + num(v)).join(", ")}</td>
    <td class="num">${num(r.resource_reached)}</td><td class="num">${num(r.last)}</td><td class="num">${num(r.best)}</td></tr>`).join("");
  const cfg = {displaylogo: false, responsive: true, displayModeBar: "hover"};
  const bv = d.best_so_far.value;
  const logY = bv.length > 1 && bv.every(v => v > 0) && Math.max(...bv) / Math.min(...bv) > 100;
  Plotly.react("best", [{x: d.best_so_far.time, y: bv, mode: "lines", line: {shape: "hv"}, name: "best so far"}],
    layout(`best ${d.metric} so far`, time, d.metric, {yaxis: {title: {text: d.metric}, type: logY ? "log" : "linear"}}), cfg);
  const xs = d.resource_attr ? "resource" : "time";
  const shown = {};
  const curves = d.curves.filter(c => c.value.length).map(c => {
    const first = !shown[c.status];
    shown[c.status] = true;
    return {x: c[xs], y: c.value, mode: "lines+markers", name: c.status, legendgroup: c.status, showlegend: first,
      text: "trial " + c.trial_id, hovertemplate: "%{text}<br>%{x}: %{y}<extra></extra>",
      line: {dash: STYLES[c.status] || "solid", color: COLORS[c.status] || "#444", width: c.status === "running" ? 2.5 : 1.2},
      marker: {size: 3}};
  });
  Plotly.react("curves", curves, layout("learning curves", d.resource_attr || time, d.metric), cfg);
  Plotly.react("parcoords", parcoords(d), layout(`configurations vs best ${d.metric}`, "", "", {margin: {l: 60, r: 60, t: 80, b: 30}}), cfg);
  if (d.pareto_front && document.getElementById("front")) {
    const [m1, m2] = d.objectives.metric;
    const pts = d.pareto_front.slice().sort((a, b) => a.values[m1] - b.values[m1]);
    Plotly.react("front", [{x: pts.map(p => p.values[m1]), y: pts.map(p => p.values[m2]), mode: "lines+markers",
      line: {shape: "hv"}, text: pts.map(p => "trial " + p.trial_id), name: "Pareto front"}],
      layout(`Pareto front: ${pts.length} trials, hypervolume ${num(d.hypervolume)}`, m1, m2, {title: {text: `Pareto front: ${pts.length} trials<br>hypervolume ${num(d.hypervolume)}`, font: {size: 13}}}), cfg);
  }
}

// -- one grid -------------------------------------------------------------------------------------
let gridSignature = null;
async function grid() {
  const g = await getJSON("/api/grids/" + idPath(ID));
  if (g.signature === gridSignature) return;
  gridSignature = g.signature;
  const figs = g.figures.map(f => `<img class="figure" alt="${esc(f)}" src="/api/grid-figure/${encodeURIComponent(f)}?grid=${encodeURIComponent(g.id)}&v=${g.signature}">`).join("");
  main.innerHTML = `<h2>Grid ${esc(g.tag)} <span class="muted">${g.n_experiments} experiments</span></h2>
    ${g.error ? `<p class="error">${esc(g.error)}</p>` : ""}<div id="figures">${figs}</div><div id="report">${g.report_html}</div>`;
}

if (PAGE === "overview") poll(overview, 2000);
else if (PAGE === "experiment") poll(experiment, 2000);
else if (PAGE === "grid") poll(grid, 5000);
