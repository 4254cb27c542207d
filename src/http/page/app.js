// cqlpulse live page. Polls /status (what is true now) and /api/history (one point a second,
// exact HDR percentiles) once a second, draws them, and steers through the control API. The
// control token, when one is needed, lives in this tab's memory only (never in storage).
"use strict";

import { LineChart, legend, formatNumber, formatMs } from "./chart.js";

const POLL_MS = 1000;
const COLORS = {
  target: "#8ab4f8", achieved: "#81c995", dropped: "#f28b82", retries: "#fdd663",
  inflight: "#81c995", limit: "#8ab4f8",
  p50: "#81c995", p90: "#78d9ec", p99: "#fdd663", p999: "#fcad70", max: "#f28b82",
};
const KIND_COLORS = ["#f28b82", "#fcad70", "#fdd663", "#c58af9", "#78d9ec", "#ff8bcb",
  "#a8dab5", "#aecbfa", "#e6c9a8", "#d7aefb", "#f6aea9"];
const PERCENTILES = [["p50", "p50_ms"], ["p90", "p90_ms"], ["p99", "p99_ms"], ["p99.9", "p999_ms"], ["max", "max_ms"]];

const state = { points: [], ops: [], kinds: [], capacity: 600, lastSeq: 0, status: null, token: null, opCharts: [] };
const $ = (id) => document.getElementById(id);

// Writes a figure: the text shown, and the raw value in data-value (what tests compare).
function show(id, value, format = formatNumber) {
  const el = $(id);
  el.dataset.value = value === null || value === undefined ? "" : String(value);
  el.textContent = format(value);
}

function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return (d ? `${d}d ` : "") + `${pad(h)}:${pad(m)}:${pad(s % 60)}`;
}

function bytes(b) {
  if (!b) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

// Per-second rate of a cumulative counter between the last two points.
function rateOf(get, at = state.points.length - 1) {
  const p = state.points;
  if (at < 1) return null;
  const dt = p[at].time - p[at - 1].time;
  return dt > 0 ? Math.max(0, (get(p[at]) - get(p[at - 1])) / dt) : null;
}

function series(get) {
  return state.points.map((p, i) => get(p, i));
}

function renderStatus(s) {
  state.status = s;
  $("workload").textContent = s.workload;
  const phase = s.paused && s.phase === "running" ? "paused" : s.phase;
  $("phase").textContent = phase;
  $("phase").dataset.phase = phase;
  $("model").textContent = s.model;
  $("shard").textContent = `${s.shard} of ${s.shard_count}`;
  $("uptime").textContent = duration(s.uptime_seconds);
  $("spec-path").textContent = s.spec_path ?? "–";
  // Fields that newer daemons add: shown when present.
  for (const [id, key] of [["spec-digest", "spec_digest"], ["run-id", "run_id"]]) {
    const el = $(id);
    const present = s[key] !== undefined && s[key] !== null;
    el.hidden = !present;
    el.previousElementSibling.hidden = !present;
    if (present) el.textContent = String(s[key]);
  }
  show("target-rate", s.target_rate);
  show("achieved-rate", s.achieved_rate);
  show("in-flight", s.in_flight);
  show("in-flight-limit", s.in_flight_limit);
  show("peak-in-flight", s.peak_in_flight);
  show("errors", s.errors);
  show("dropped", s.dropped);
  show("issued", s.issued);
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  $("pause").dataset.paused = String(s.paused);
  $("rate-input").placeholder = `${formatNumber(s.target_rate)} ops/s`;
  $("concurrency-input").placeholder = `now ${s.concurrency}`;
  renderNodes(s.nodes);
  renderVerified(s.ops);
}

// Ops that verify (their /status entry has `verified`); hidden when none does, or for a
// daemon older than the field.
function renderVerified(ops) {
  const verifying = Array.isArray(ops) ? ops.filter((o) => o.verified) : [];
  $("verified").hidden = verifying.length === 0;
  $("verified-table").tBodies[0].replaceChildren(...verifying.map((o) => {
    const v = o.verified;
    return row([o.name, formatNumber(v.ok), formatNumber(v.missing), formatNumber(v.mismatch),
      formatNumber(v.skipped)], v.missing + v.mismatch > 0 ? "bad" : "");
  }));
}

function renderNodes(nodes) {
  const section = $("nodes");
  section.hidden = !Array.isArray(nodes);
  if (section.hidden) return;
  $("nodes-table").tBodies[0].replaceChildren(...nodes.map((n) => row([
    n.node, n.up ? "up" : "DOWN", formatNumber(n.in_flight), formatNumber(n.requests_ok),
    formatNumber(n.requests_error), formatMs(n.p99_ms),
  ], n.up ? "" : "bad")));
}

function row(cells, cls = "") {
  const tr = document.createElement("tr");
  if (cls) tr.className = cls;
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

function renderNow() {
  const p = state.points;
  const last = p[p.length - 1];
  if (!last) return;
  const clock = $("clock").value;
  show("error-rate", rateOf((q) => q.errors.reduce((a, b) => a + b, 0)));
  show("drop-rate", rateOf((q) => q.dropped));
  show("retry-rate", rateOf((q) => q.retries));
  const cpu = rateOf((q) => q.cpu_seconds);
  $("cpu").dataset.value = cpu ?? "";
  $("cpu").textContent = cpu === null ? "–" : `${(cpu * 100).toFixed(0)}%`;
  $("rss").textContent = bytes(last.rss_bytes);
  $("hosts").textContent = `${last.cluster.connected_hosts}/${last.cluster.known_hosts}`;
  $("connections").textContent = formatNumber(last.cluster.connections);
  const p99s = last.ops.map((o) => o.service?.p99_ms).filter((v) => v !== undefined);
  show("p99-service", p99s.length ? Math.max(...p99s) : null, formatMs);
  show("lag-p99", last.schedule_lag?.p99_ms ?? null, formatMs);

  $("ops-table").tBodies[0].replaceChildren(...state.ops.map((name, i) => {
    const o = last.ops[i];
    const lat = o?.[clock];
    return row([
      name,
      formatNumber(rateOf((q) => q.ops[i]?.ok ?? 0)),
      formatNumber(rateOf((q) => q.ops[i]?.errors ?? 0)),
      formatNumber(o?.ok), formatNumber(o?.errors),
      ...PERCENTILES.map(([, k]) => formatMs(lat?.[k])),
      o?.recall == null ? "–" : o.recall.toFixed(3),
    ]);
  }));

  const kinds = state.kinds.map((k, i) => [k, last.errors[i], rateOf((q) => q.errors[i])])
    .filter(([, total]) => total > 0);
  $("no-errors").hidden = kinds.length > 0;
  $("errors-table").hidden = kinds.length === 0;
  $("errors-table").tBodies[0].replaceChildren(...kinds.map(([k, total, r]) => row([k, formatNumber(r), formatNumber(total)])));
}

const charts = {};
function chart(id, opts) {
  return (charts[id] ??= new LineChart($(id), opts));
}

function draw() {
  const times = series((p) => p.time);
  const win = Number($("window").value);
  const perSecond = (get) => series((p, i) => rateOf(get, i));
  const plot = (id, legendId, opts, list) => {
    chart(id, opts).draw(times, list, win);
    legend($(legendId), list);
  };
  plot("chart-rate", "legend-rate", {}, [
    { label: "target", color: COLORS.target, values: series((p) => p.target_rate), dash: [4, 3] },
    { label: "achieved", color: COLORS.achieved, values: series((p) => p.achieved_rate) },
    { label: "dropped", color: COLORS.dropped, values: perSecond((q) => q.dropped) },
  ]);
  plot("chart-inflight", "legend-inflight", {}, [
    { label: "limit", color: COLORS.limit, values: series((p) => p.in_flight_limit), dash: [4, 3] },
    { label: "in flight", color: COLORS.inflight, values: series((p) => p.in_flight) },
  ]);
  plot("chart-lag", "legend-lag", { log: true, format: formatMs }, PERCENTILES.map(([label, k]) => ({
    label, color: COLORS[label.replace(".", "")], values: series((p) => p.schedule_lag?.[k] ?? null),
  })));
  const errorSeries = state.kinds.map((k, i) => ({
    label: k, color: KIND_COLORS[i % KIND_COLORS.length], values: perSecond((q) => q.errors[i]),
  })).filter((s) => state.points.some((p) => p.errors[state.kinds.indexOf(s.label)] > 0));
  errorSeries.push({ label: "retries", color: COLORS.retries, values: perSecond((q) => q.retries), dash: [4, 3] });
  plot("chart-errors", "legend-errors", {}, errorSeries);
  // Recall of the ANN ops with [ops.recall]: shown once one has been checked.
  const recallSeries = state.ops.map((name, i) => ({
    label: name, color: KIND_COLORS[i % KIND_COLORS.length], values: series((p) => p.ops[i]?.recall ?? null),
  })).filter((s) => s.values.some((v) => v !== null));
  $("recall-figure").hidden = recallSeries.length === 0;
  if (recallSeries.length) plot("chart-recall", "legend-recall", { format: (v) => v.toFixed(2) }, recallSeries);

  const clock = $("clock").value;
  state.ops.forEach((name, i) => {
    if (!state.opCharts[i]) {
      const fig = document.createElement("figure");
      const cap = document.createElement("figcaption");
      const title = document.createElement("span");
      const leg = document.createElement("span");
      leg.className = "legend";
      cap.append(title, " ", leg);
      const canvas = document.createElement("canvas");
      canvas.id = `chart-op-${i}`;
      fig.append(cap, canvas);
      $("op-charts").append(fig);
      state.opCharts[i] = { chart: new LineChart(canvas, { log: true, format: formatMs }), title, leg };
    }
    const c = state.opCharts[i];
    c.title.textContent = `${name}: ${clock === "service" ? "service" : "response"} time`;
    const list = PERCENTILES.map(([label, k]) => ({
      label, color: COLORS[label.replace(".", "")], values: series((p) => p.ops[i]?.[clock]?.[k] ?? null),
    }));
    c.chart.draw(times, list, win);
    legend(c.leg, list);
  });
}

async function poll() {
  try {
    const [status, feed] = await Promise.all([
      getJSON("/status"),
      getJSON(`/api/history?since=${state.lastSeq}`),
    ]);
    state.ops = feed.ops;
    state.kinds = feed.error_kinds;
    state.capacity = feed.capacity;
    // A restarted daemon starts its sequence again: start the lines again too.
    if (feed.points.length && feed.points[0].seq <= state.lastSeq) state.points = [];
    state.points.push(...feed.points);
    if (state.points.length > state.capacity) state.points.splice(0, state.points.length - state.capacity);
    if (state.points.length) state.lastSeq = state.points[state.points.length - 1].seq;
    renderStatus(status);
    renderNow();
    draw();
    $("link").textContent = "live";
    $("link").dataset.ok = "true";
  } catch (e) {
    $("link").textContent = "daemon unreachable: figures frozen";
    $("link").dataset.ok = "false";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// Sends a control request; shows what happened, with the API's own error text on refusal.
async function control(method, path, body, what) {
  const msg = $("message");
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers["Authorization"] = `Bearer ${state.token}`;
  msg.dataset.ok = "";
  msg.textContent = `${what}…`;
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    msg.dataset.ok = "false";
    msg.textContent = `${what}: the daemon did not answer (${e.message})`;
    return;
  }
  let reply = null;
  try { reply = await r.json(); } catch { /* an empty or non-JSON body: the status says it */ }
  if (r.ok) {
    msg.dataset.ok = "true";
    msg.textContent = `${what}: done`;
    if (reply && reply.phase) renderStatus(reply);
    return;
  }
  msg.dataset.ok = "false";
  msg.textContent = `${what} refused (HTTP ${r.status}): ${reply?.error ?? r.statusText}`;
  if (r.status === 401) {
    $("token-label").hidden = false;
    $("token").focus();
  }
}

function number(id) {
  const raw = $(id).value.trim();
  return raw === "" ? null : Number(raw);
}

function wire() {
  $("pause").addEventListener("click", () => {
    const paused = state.status?.paused;
    control("POST", paused ? "/control/resume" : "/control/pause", undefined, paused ? "resume" : "pause");
  });
  $("rate-set").addEventListener("click", () => {
    control("PUT", "/control/rate", { rate: number("rate-input") }, "set rate");
  });
  $("concurrency-set").addEventListener("click", () => {
    control("PUT", "/control/concurrency", { concurrency: number("concurrency-input") }, "set concurrency");
  });
  for (const [input, button] of [["rate-input", "rate-set"], ["concurrency-input", "concurrency-set"]]) {
    $(input).addEventListener("keydown", (e) => { if (e.key === "Enter") $(button).click(); });
  }
  $("token").addEventListener("input", (e) => { state.token = e.target.value || null; });
  $("clock").addEventListener("change", () => { renderNow(); draw(); });
  $("window").addEventListener("change", draw);
  window.addEventListener("resize", draw);
}

wire();
poll();
