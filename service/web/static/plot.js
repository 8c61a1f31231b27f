/* alvo oracle pages: small canvas and SVG plotting, no library.
 *
 * Spectra arrive as base64 little-endian float32 (see service/web/oracle.py).
 * A row's plot has two panels: the wide native spectrum (H-beta to He I 6678,
 * binned) with the lines marked, and the H-alpha detail: native pixels with
 * their 1-sigma band (flux axis, left), the star's other spectra scaled to its
 * continuum, and the adapted 140-pixel vector the network saw (z-score, right
 * axis, amber), with optional class exemplars in the vector's scale.
 */
"use strict";

const AlvoPlot = (() => {
  const HALPHA = 6564.61; // Å, vacuum
  // every colour reaches 4.5:1 on white, so lines and their labels read as text does
  const COLORS = {
    "single-peak": "#c2410c",
    "double-peak": "#7e22ce",
    absorption: "#1d4ed8",
    "not-sure": "#4b5563",
    bad: "#7c2d12",
    native: "#111827",
    adapted: "#b45309",
    band: "rgba(75, 85, 99, 0.22)",
    twin: "#0e7490",
    line: "#b91c1c",
    axis: "#374151",
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

  /** The median of the finite values of y whose x lies in [lo, hi] (a continuum level). */
  function median(x, y, lo, hi) {
    const values = [];
    for (let i = 0; i < x.length; i++) if (x[i] >= lo && x[i] <= hi && Number.isFinite(y[i])) values.push(y[i]);
    if (!values.length) return NaN;
    values.sort((a, b) => a - b);
    return values[values.length >> 1];
  }

  /** The star's other spectrum, scaled to this one's continuum in the view. */
  function scaled(twin, level, view) {
    const own = median(twin.wavelength, twin.flux, view.lo, view.hi);
    if (!Number.isFinite(own) || !own || !Number.isFinite(level)) return null;
    return twin.flux.map((v) => (v * level) / own);
  }

  function marker(ctx, x, top, bottom, name, strong, big) {
    ctx.save();
    ctx.strokeStyle = strong ? COLORS.line : "#6b7280";
    ctx.fillStyle = strong ? COLORS.line : "#4b5563";
    ctx.lineWidth = strong ? 1.2 : 1;
    ctx.setLineDash(strong ? [4, 2] : [2, 3]);
    ctx.beginPath();
    ctx.moveTo(x, top + (big ? 14 : 10));
    ctx.lineTo(x, bottom);
    ctx.stroke();
    ctx.font = `${strong ? "600 " : ""}${big ? 12 : 10}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.fillText(name, x, top + (big ? 11 : 8));
    ctx.restore();
  }

  function frame(ctx, box) {
    ctx.strokeStyle = "#9ca3af";
    ctx.lineWidth = 1;
    ctx.strokeRect(box.l + 0.5, box.t + 0.5, box.r - box.l - 1, box.b - box.t - 1);
  }

  function xTicks(ctx, view, box, sx, count, big, unit) {
    ctx.save();
    ctx.fillStyle = COLORS.axis;
    ctx.font = `${big ? 12 : 10}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    const step = niceStep((view.hi - view.lo) / count);
    let last = -Infinity;
    for (let t = Math.ceil(view.lo / step) * step; t <= view.hi; t += step) {
      const px = sx(t);
      const text = String(Math.round(t));
      const half = ctx.measureText(text).width / 2;
      ctx.fillRect(px, box.b, 1, 3);
      if (px - half >= box.l - 4 && px + half <= box.r - (unit ? 12 : 0) && px - half > last + 4) {
        ctx.fillText(text, px, box.b + (big ? 15 : 12));
        last = px + half;
      }
    }
    if (unit) {
      ctx.textAlign = "right";
      ctx.fillText("Å", box.r, box.b + (big ? 15 : 12));
    }
    ctx.restore();
  }

  /**
   * Draw one spectrum.
   * data: {wavelength, flux, sigma (Float32Array|null), adapted, grid, error, unit,
   *        exemplars ({class: Float32Array}|null), twins ([{wavelength, flux, name}]),
   *        overview ({wavelength, flux}|null), lines ({name: Å}),
   *        defects ({dead: [[Å, Å]], spikes: [Å]}|null: shaded and marked, quality.js)}
   * view: {lo, hi} Å of the detail; options: {big: bool, size: [w, h] CSS px if known}.
   * Small plots have the wide overview on the left; the big (zoom) plot is the detail alone.
   */
  function spectrum(canvas, data, view, options = {}) {
    const { ctx, w, h } = context(canvas, options.size);
    const big = !!options.big;
    const lines = data.lines || { "Hα": HALPHA };
    const font = big ? 12 : 10;
    const overviewWidth = !big && data.overview ? Math.round(w * 0.36) : 0;
    if (overviewWidth) drawOverview(ctx, data, { l: 2, r: overviewWidth - 6, t: 12, b: h - 16 }, lines);
    const box = { l: overviewWidth + (big ? 56 : 34), r: w - (big ? 48 : 26), t: big ? 18 : 12,
      b: h - (big ? 40 : 16) };
    const sx = (x) => box.l + ((x - view.lo) / (view.hi - view.lo)) * (box.r - box.l);
    // native flux in the upper part, the adapted vector in the lower part: for LAMOST
    // they would otherwise coincide and read as one noisy line
    const height = box.b - box.t;
    const scaler = (r, top, bottom) => (y) => box.b - bottom * height - ((y - r[0]) / (r[1] - r[0])) * (1 - top - bottom) * height;
    const upper = (r) => scaler(r, 0.02, 0.36);
    const lower = (r) => scaler(r, 0.55, 0.02);
    // adapted vector and exemplars share the z-score scale
    let vr = range(data.grid, data.adapted, view.lo, view.hi);
    if (data.exemplars) {
      for (const values of Object.values(data.exemplars)) {
        const r = range(data.grid, values, view.lo, view.hi);
        if (r && vr) vr = [Math.min(vr[0], r[0]), Math.max(vr[1], r[1])];
      }
    }
    const hasFlux = data.flux && data.flux.length;
    let nr = hasFlux ? range(data.wavelength, data.flux, view.lo, view.hi) : null;
    const level = hasFlux ? median(data.wavelength, data.flux, view.lo, view.hi) : NaN;
    const twins = (data.twins || []).map((t) => ({ ...t, scaled: scaled(t, level, view) }))
      .filter((t) => t.scaled);
    for (const t of twins) {
      const r = range(t.wavelength, t.scaled, view.lo, view.hi);
      if (r && nr) nr = [Math.min(nr[0], r[0]), Math.max(nr[1], r[1])];
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.l, box.t, box.r - box.l, box.b - box.t);
    ctx.clip();
    for (const [name, at] of Object.entries(lines)) {
      if (at > view.lo && at < view.hi) marker(ctx, sx(at), box.t, box.b, name, at === HALPHA, big);
    }
    if (data.defects && typeof AlvoQuality !== "undefined") AlvoQuality.drawDefects(ctx, data.defects, sx, box, view);
    if (nr && data.sigma && data.sigma.length) band(ctx, data.wavelength, data.flux, data.sigma, sx, upper(nr), view);
    if (vr) {
      const sy = lower(vr);
      if (data.exemplars) {
        for (const [name, values] of Object.entries(data.exemplars)) {
          line(ctx, data.grid, values, sx, sy, view.lo, view.hi,
            { color: COLORS[name], width: big ? 1.5 : 1, dash: [4, 3], alpha: 0.85 });
        }
      }
      line(ctx, data.grid, data.adapted, sx, sy, view.lo, view.hi,
        { color: COLORS.adapted, width: big ? 2.5 : 1.6, alpha: 0.9 });
    }
    if (nr) {
      for (const t of twins) {
        line(ctx, t.wavelength, t.scaled, sx, upper(nr), view.lo, view.hi,
          { color: COLORS.twin, width: big ? 1.4 : 1, alpha: 0.9 });
      }
      line(ctx, data.wavelength, data.flux, sx, upper(nr), view.lo, view.hi,
        { color: COLORS.native, width: big ? 1.3 : 1 });
    }
    ctx.restore();
    frame(ctx, box);
    xTicks(ctx, view, box, sx, big ? 10 : 4, big, true);
    ctx.font = `${font}px system-ui, sans-serif`;
    if (nr) axisLabels(ctx, nr, box.l - 3, "right", upper(nr), COLORS.native, big ? 5 : 2);
    if (vr) axisLabels(ctx, vr, box.r + 3, "left", lower(vr), COLORS.adapted, big ? 4 : 2);
    ctx.save();
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "left";
    ctx.fillText(`flux (${data.unit || "archive units"})`, box.l, box.t - (big ? 5 : 3));
    ctx.textAlign = "right";
    ctx.fillStyle = COLORS.adapted;
    ctx.fillText(big ? "adapted vector (z-score)" : "z", w - 2, box.t - (big ? 5 : 3));
    if (big) {
      ctx.fillStyle = COLORS.axis;
      ctx.textAlign = "center";
      ctx.fillText("wavelength (Å, vacuum)", (box.l + box.r) / 2, h - 6);
    }
    ctx.restore();
    if (data.error) {
      ctx.fillStyle = "#991b1b";
      ctx.textAlign = "left";
      ctx.font = `${font}px system-ui, sans-serif`;
      ctx.fillText(`native spectrum: ${data.error}`, box.l + 6, box.t + 24);
    }
  }

  /** The native flux +- 1 sigma as a shaded band (gaps where either is missing). */
  function band(ctx, x, y, sigma, sx, sy, view) {
    ctx.save();
    ctx.fillStyle = COLORS.band;
    let run = [];
    const flushRun = () => {
      if (run.length > 1) {
        ctx.beginPath();
        run.forEach((i, k) => (k ? ctx.lineTo(sx(x[i]), sy(y[i] + sigma[i])) : ctx.moveTo(sx(x[i]), sy(y[i] + sigma[i]))));
        for (let k = run.length - 1; k >= 0; k--) ctx.lineTo(sx(x[run[k]]), sy(y[run[k]] - sigma[run[k]]));
        ctx.closePath();
        ctx.fill();
      }
      run = [];
    };
    for (let i = 0; i < x.length; i++) {
      if (x[i] < view.lo - 5 || x[i] > view.hi + 5) continue;
      if (Number.isFinite(y[i]) && Number.isFinite(sigma[i])) run.push(i);
      else flushRun();
    }
    flushRun();
    ctx.restore();
  }

  /** The wide native spectrum, lines marked: is this an emission-line star at all? */
  function drawOverview(ctx, data, box, lines) {
    const o = data.overview;
    const view = { lo: 4700, hi: 6800 };
    if (o.wavelength.length) {
      view.lo = Math.max(view.lo, o.wavelength[0]);
      view.hi = Math.min(view.hi, o.wavelength[o.wavelength.length - 1]);
    }
    const sx = (x) => box.l + ((x - view.lo) / (view.hi - view.lo)) * (box.r - box.l);
    const r = range(o.wavelength, o.flux, view.lo, view.hi);
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.l, box.t, box.r - box.l, box.b - box.t);
    ctx.clip();
    for (const [name, at] of Object.entries(lines)) {
      if (at > view.lo && at < view.hi) {
        // He I 6678 sits 11 px from H-alpha here: marked, named in the detail only
        const short = name === "He I 6678" ? "" : name.replace(/ \d+$/, "");
        marker(ctx, sx(at), box.t, box.b, short, at === HALPHA, false);
      }
    }
    if (r) line(ctx, o.wavelength, o.flux, sx, (y) => box.b - ((y - r[0]) / (r[1] - r[0])) * (box.b - box.t),
      view.lo, view.hi, { color: COLORS.native, width: 1 });
    ctx.restore();
    frame(ctx, box);
    xTicks(ctx, view, box, sx, 3, false, false);
  }

  function axisLabels(ctx, r, x, align, sy, color, count = 5) {
    ctx.save();
    ctx.fillStyle = color;
    ctx.textAlign = align;
    const step = niceStep((r[1] - r[0]) / count);
    for (let t = Math.ceil(r[0] / step) * step; t <= r[1]; t += step) {
      ctx.fillText(formatTick(t, step), x, sy(t) + 4);
    }
    ctx.restore();
  }

  function formatTick(t, step) {
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    if (Math.abs(t) >= 1e4) return `${(t / 1000).toFixed(0)}k`;
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

  return { floats, grid, spectrum, lineChart, median, COLORS, HALPHA };
})();
