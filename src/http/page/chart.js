// cqlpulse live page: a small line chart drawn on a canvas, no library. One chart is a set
// of series over a shared time axis; y is linear from 0, or logarithmic (latencies).
"use strict";

const DPR = () => window.devicePixelRatio || 1;

// 1, 2, 5 steps: the "nice" tick spacing for a linear axis up to `max`.
function niceStep(max, ticks) {
  const raw = max / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

export function formatNumber(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1 || a === 0) return v.toFixed(a === 0 ? 0 : 2);
  return v.toPrecision(2);
}

export function formatMs(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 1 : 2) + " s";
  if (v >= 1) return v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2) + " ms";
  return (v * 1000).toFixed(v >= 0.1 ? 0 : 1) + " µs";
}

export class LineChart {
  // canvas: the element; opts: { unit: "ops/s" | "ms" | ..., log: bool, format: fn }
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = Object.assign({ log: false, format: formatNumber }, opts);
  }

  // times: seconds (x); series: [{ label, color, values: [number|null], dash }]
  draw(times, series, windowSeconds) {
    const c = this.canvas;
    const dpr = DPR();
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const style = getComputedStyle(c);
    const ink = style.getPropertyValue("--ink") || "#ccc";
    const grid = style.getPropertyValue("--grid") || "#333";
    g.font = "11px system-ui, sans-serif";

    const left = 58, right = 16, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    const tEnd = times.length ? times[times.length - 1] : 0;
    const tStart = tEnd - windowSeconds;

    let max = 0, min = Infinity;
    for (const s of series) {
      s.values.forEach((v, i) => {
        if (v === null || !isFinite(v) || times[i] < tStart) return;
        max = Math.max(max, v);
        if (v > 0) min = Math.min(min, v);
      });
    }
    const log = this.opts.log;
    let y;
    let ticks = [];
    if (log) {
      if (!isFinite(min)) { min = 0.1; max = 10; }
      let lo = Math.pow(10, Math.floor(Math.log10(min)));
      let hi = Math.pow(10, Math.ceil(Math.log10(Math.max(max, lo * 10))));
      const l0 = Math.log10(lo), l1 = Math.log10(hi);
      y = (v) => top + ph - ((Math.log10(Math.max(v, lo)) - l0) / (l1 - l0)) * ph;
      for (let d = lo; d <= hi * 1.0001; d *= 10) ticks.push(d);
    } else {
      if (max <= 0) max = 1;
      const step = niceStep(max, 4);
      const hi = Math.ceil(max / step) * step;
      y = (v) => top + ph - (v / hi) * ph;
      for (let v = 0; v <= hi + step / 2; v += step) ticks.push(v);
    }
    const x = (t) => left + ((t - tStart) / windowSeconds) * pw;

    g.strokeStyle = grid;
    g.fillStyle = ink;
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (const v of ticks) {
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(left, yy); g.lineTo(left + pw, yy); g.stroke();
      g.fillText(this.opts.format(v), left - 6, yy);
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    const span = windowSeconds >= 600 ? 120 : windowSeconds >= 180 ? 60 : 15;
    for (let s = 0; s <= windowSeconds; s += span) {
      const xx = Math.round(x(tEnd - s)) + 0.5;
      g.beginPath(); g.moveTo(xx, top); g.lineTo(xx, top + ph); g.stroke();
      g.fillText(s === 0 ? "now" : `-${s >= 60 ? s / 60 + "m" : s + "s"}`, xx, top + ph + 4);
    }

    g.save();
    g.beginPath(); g.rect(left, top, pw, ph); g.clip();
    for (const s of series) {
      g.strokeStyle = s.color;
      g.lineWidth = s.width || 1.5;
      g.setLineDash(s.dash || []);
      g.beginPath();
      let pen = false;
      s.values.forEach((v, i) => {
        if (v === null || !isFinite(v) || times[i] < tStart - 1) { pen = false; return; }
        const xx = x(times[i]), yy = y(log ? Math.max(v, 1e-9) : v);
        if (pen) g.lineTo(xx, yy); else g.moveTo(xx, yy);
        pen = true;
      });
      g.stroke();
    }
    g.restore();
  }
}

// A legend (coloured labels) in `el` for `series`.
export function legend(el, series) {
  const key = series.map((s) => s.label + s.color).join("|");
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.replaceChildren(...series.map((s) => {
    const span = document.createElement("span");
    span.className = "key";
    span.style.setProperty("--key", s.color);
    span.textContent = s.label;
    return span;
  }));
}
