/* alvo oracle pages: small canvas and SVG plotting, no library.
 *
 * Spectra arrive as base64 little-endian float32 (see service/web/oracle.py);
 * a plot draws the native pixels around H-alpha (own flux scale, left) and the
 * adapted 140-pixel vector the network saw (z-scored, orange, own scale), with
 * optional class exemplars (mean adapted vector per class) in the vector's scale.
 */
"use strict";

const AlvoPlot = (() => {
  const HALPHA = 6564.61; // Å, vacuum
  const COLORS = {
    "single-peak": "#c2410c",
    "double-peak": "#7e22ce",
    absorption: "#1d4ed8",
    "not-sure": "#6b7280",
    bad: "#7c2d12",
    native: "#111827",
    adapted: "#f59e0b",
  };

  function floats(b64) {
    if (!b64) return new Float32Array(0);
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  function grid(spec) {
    const [start, stop, n] = spec;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = start + ((stop - start) * i) / (n - 1);
    return out;
  }

  /**
   * Resize a canvas's backing store to its CSS size x devicePixelRatio; return a 2-D context.
   * `size` ([w, h] CSS px) spares a layout read: reading clientWidth right after another
   * canvas was resized forces a layout of the whole page, per canvas.
   */
  function context(canvas, size) {
    const ratio = window.devicePixelRatio || 1;
    const w = size ? size[0] : canvas.clientWidth || canvas.width;
    const h = size ? size[1] : canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }

  function range(x, y, lo, hi) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < x.length; i++) {
      if (x[i] < lo || x[i] > hi || !Number.isFinite(y[i])) continue;
      if (y[i] < min) min = y[i];
      if (y[i] > max) max = y[i];
    }
    if (!Number.isFinite(min)) return null;
    const pad = (max - min || 1) * 0.08;
    return [min - pad, max + pad];
  }

  function line(ctx, x, y, sx, sy, lo, hi, style) {
    ctx.save();
    ctx.strokeStyle = style.color;
    ctx.lineWidth = style.width || 1;
    if (style.dash) ctx.setLineDash(style.dash);
    ctx.globalAlpha = style.alpha || 1;
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < x.length; i++) {
      // keep one point beyond each edge so lines reach the frame
      if (x[i] < lo && !(i + 1 < x.length && x[i + 1] >= lo)) continue;
      if (x[i] > hi && !(i > 0 && x[i - 1] <= hi)) continue;
      if (!Number.isFinite(y[i])) {
        pen = false;
        continue;
      }
      const px = sx(x[i]);
      const py = sy(y[i]);
      if (pen) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
      pen = true;
    }
    ctx.stroke();
    ctx.restore();
  }

  /**
   * Draw one spectrum.
   * data: {wavelength, flux (Float32Array or null), adapted (Float32Array), grid (Float32Array),
   *        error (string|undefined), exemplars ({class: Float32Array}|null)}
   * view: {lo, hi} Å; options: {big: bool, size: [w, h] CSS px if known}
   */
  function spectrum(canvas, data, view, options = {}) {
    const { ctx, w, h } = context(canvas, options.size);
    const big = !!options.big;
    const margin = { l: big ? 44 : 6, r: big ? 44 : 6, t: big ? 14 : 6, b: big ? 38 : 16 };
    const sx = (x) => margin.l + ((x - view.lo) / (view.hi - view.lo)) * (w - margin.l - margin.r);
    ctx.save();
    ctx.beginPath();
    ctx.rect(margin.l, margin.t, w - margin.l - margin.r, h - margin.t - margin.b);
    ctx.clip();
    // H-alpha
    ctx.strokeStyle = "#d1d5db";
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(sx(HALPHA), margin.t);
    ctx.lineTo(sx(HALPHA), h - margin.b);
    ctx.stroke();
    ctx.setLineDash([]);
    const bottom = h - margin.b;
    const height = h - margin.t - margin.b;
    const scaler = (r) => (y) => bottom - ((y - r[0]) / (r[1] - r[0])) * height;
    // adapted vector and exemplars share the z-score scale
    let vr = range(data.grid, data.adapted, view.lo, view.hi);
    if (data.exemplars) {
      for (const values of Object.values(data.exemplars)) {
        const r = range(data.grid, values, view.lo, view.hi);
        if (r && vr) vr = [Math.min(vr[0], r[0]), Math.max(vr[1], r[1])];
      }
    }
    if (vr) {
      const sy = scaler(vr);
      if (data.exemplars) {
        for (const [name, values] of Object.entries(data.exemplars)) {
          line(ctx, data.grid, values, sx, sy, view.lo, view.hi,
            { color: COLORS[name], width: big ? 1.5 : 1, dash: [4, 3], alpha: 0.85 });
        }
      }
      line(ctx, data.grid, data.adapted, sx, sy, view.lo, view.hi,
        { color: COLORS.adapted, width: big ? 2.5 : 1.8, alpha: 0.9 });
    }
    let nr = null;
    if (data.flux && data.flux.length) {
      nr = range(data.wavelength, data.flux, view.lo, view.hi);
      if (nr) line(ctx, data.wavelength, data.flux, sx, scaler(nr), view.lo, view.hi,
        { color: COLORS.native, width: big ? 1.2 : 1 });
    }
    ctx.restore();
    // frame and axis
    ctx.strokeStyle = "#9ca3af";
    ctx.strokeRect(margin.l + 0.5, margin.t + 0.5, w - margin.l - margin.r - 1, height - 1);
    ctx.fillStyle = "#4b5563";
    ctx.font = `${big ? 12 : 10}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    const step = niceStep((view.hi - view.lo) / (big ? 10 : 5));
    for (let t = Math.ceil(view.lo / step) * step; t <= view.hi; t += step) {
      const px = sx(t);
      const text = String(Math.round(t));
      const half = ctx.measureText(text).width / 2;
      ctx.fillRect(px, bottom, 1, 3);
      if (px - half >= 0 && px + half <= w) ctx.fillText(text, px, bottom + (big ? 15 : 12));
    }
    if (big) {
      ctx.save();
      ctx.fillText("wavelength (Å, vacuum)", (margin.l + w - margin.r) / 2, bottom + 32);
      ctx.textAlign = "left";
      ctx.fillStyle = COLORS.native;
      ctx.fillText("flux", 4, bottom + 32);
      ctx.textAlign = "right";
      ctx.fillStyle = "#b45309";
      ctx.fillText("z-score", w - 4, bottom + 32);
      ctx.restore();
      if (nr) axisLabels(ctx, nr, margin.l - 4, "right", scaler(nr), COLORS.native);
      if (vr) axisLabels(ctx, vr, w - margin.r + 4, "left", scaler(vr), "#b45309");
    }
    if (data.error) {
      ctx.fillStyle = "#991b1b";
      ctx.textAlign = "left";
      ctx.fillText(`native spectrum: ${data.error}`, margin.l + 6, margin.t + 14);
    }
  }

  function axisLabels(ctx, r, x, align, sy, color) {
    ctx.save();
    ctx.fillStyle = color;
    ctx.textAlign = align;
    const step = niceStep((r[1] - r[0]) / 5);
    for (let t = Math.ceil(r[0] / step) * step; t <= r[1]; t += step) {
      ctx.fillText(formatTick(t, step), x, sy(t) + 4);
    }
    ctx.restore();
  }

  function formatTick(t, step) {
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    return t.toFixed(Math.min(digits, 3));
  }

  function niceStep(raw) {
    const power = 10 ** Math.floor(Math.log10(raw));
    const f = raw / power;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
  }

  // --- SVG charts for the overview ------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs = {}, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /**
   * A line chart: series [{name, color, points: [[x, y]], dash, band: [[x, lo, hi]]}]
   * on a 0..1 y axis (fractions), x = iteration number.
   */
  function lineChart(series, options = {}) {
    const w = options.width || 460;
    const h = options.height || 220;
    const m = { l: 40, r: 12, t: 12, b: 34 };
    const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", class: "chart" });
    svg.append(el("title", {}, options.title || "chart"));
    const xs = series.flatMap((s) => s.points.map((p) => p[0]));
    const x0 = Math.min(0, ...xs);
    const x1 = Math.max(1, ...xs);
    const y0 = options.y0 ?? 0;
    const y1 = options.y1 ?? 1;
    const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
    const sy = (y) => h - m.b - ((y - y0) / (y1 - y0)) * (h - m.t - m.b);
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      svg.append(el("line", { x1: m.l, x2: w - m.r, y1: sy(y), y2: sy(y), class: "grid" }));
      svg.append(el("text", { x: m.l - 6, y: sy(y) + 4, class: "tick", "text-anchor": "end" },
        options.percent ? `${Math.round(y * 100)}%` : String(Math.round(y))));
    }
    const xstep = Math.max(1, Math.ceil((x1 - x0) / 10));
    for (let x = Math.ceil(x0); x <= x1; x += xstep) {
      svg.append(el("text", { x: sx(x), y: h - m.b + 16, class: "tick", "text-anchor": "middle" },
        String(x)));
    }
    svg.append(el("text", { x: (m.l + w - m.r) / 2, y: h - 4, class: "axis", "text-anchor": "middle" },
      options.xlabel || "iteration"));
    for (const s of series) {
      if (s.band && s.band.length) {
        const top = s.band.map((p) => `${sx(p[0])},${sy(p[2])}`);
        const low = s.band.slice().reverse().map((p) => `${sx(p[0])},${sy(p[1])}`);
        svg.append(el("polygon", { points: [...top, ...low].join(" "), fill: s.color,
          opacity: 0.15 }));
        for (const [x, lo, hi] of s.band) { // a bar per point: visible with one iteration too
          const px = sx(x);
          svg.append(el("path", { d: `M${px},${sy(lo)}V${sy(hi)}M${px - 4},${sy(lo)}h8`,
            stroke: s.color, "stroke-width": 1.5, fill: "none" }));
        }
      }
      if (!s.points.length) continue;
      const path = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0])},${sy(p[1])}`).join("");
      svg.append(el("path", { d: path, fill: "none", stroke: s.color, "stroke-width": 2,
        "stroke-dasharray": s.dash || "" }));
      for (const p of s.points) {
        const dot = el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: s.color });
        dot.append(el("title", {}, `${s.name}, iteration ${p[0]}: ${options.percent
          ? `${(p[1] * 100).toFixed(1)}%` : p[1]}`));
        svg.append(dot);
      }
    }
    return svg;
  }

  return { floats, grid, spectrum, lineChart, COLORS, HALPHA };
})();
