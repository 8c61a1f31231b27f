/* alvo labelling page: quality cues on the native spectrum.
 *
 * - smoothing of the native view (none / boxcar 3 / boxcar 5 / Gaussian sigma 1.5 or
 *   3 pixels), applied here in the browser to the flux and, in quadrature, to its
 *   1-sigma error; chosen with a select or the key o, remembered in localStorage so
 *   it stays for every row and the next visit. NaN pixels are left out of the
 *   average, never spread.
 * - dead runs shaded and cosmic-ray spikes marked (spectrum.defects from the server,
 *   found as at ingest: service/web/quality.py); the server gives a dead run no
 *   1-sigma error, so no band is drawn across it.
 * - the plot's words for H-alpha, from EW(Halpha) and its error: emission or
 *   absorption only where the EW is 3 sigma from zero, never from one noisy peak.
 */
"use strict";

const AlvoQuality = (() => {
  const STORE = "alvo.smoothing";
  const MODES = [
    ["none", "none", null],
    ["box3", "boxcar 3 px", [1, 1, 1]],
    ["box5", "boxcar 5 px", [1, 1, 1, 1, 1]],
    ["gauss1.5", "Gaussian σ 1.5 px", gaussian(1.5)],
    ["gauss3", "Gaussian σ 3 px", gaussian(3)],
  ];
  const SIGNIFICANT = 3; // |EW| / sigma(EW) above which a feature is named
  const listeners = [];
  let mode = stored();

  function gaussian(sigma) {
    const half = Math.ceil(3 * sigma);
    const out = [];
    for (let i = -half; i <= half; i++) out.push(Math.exp(-0.5 * (i / sigma) ** 2));
    return out;
  }

  function stored() {
    try {
      const value = localStorage.getItem(STORE);
      return MODES.some(([m]) => m === value) ? value : "none";
    } catch (error) {
      return "none"; // storage refused (private window): the choice lasts for the page
    }
  }

  function set(value) {
    if (!MODES.some(([m]) => m === value) || value === mode) return;
    mode = value;
    try { localStorage.setItem(STORE, value); } catch (error) { /* not remembered */ }
    for (const select of document.querySelectorAll("select.smoothing")) select.value = mode;
    for (const listener of listeners) listener(mode);
  }

  /** The next mode (key b). */
  function cycle() {
    const at = MODES.findIndex(([m]) => m === mode);
    set(MODES[(at + 1) % MODES.length][0]);
  }

  /** flux, sigma (Float32Array, sigma may be empty) smoothed by `weights`, NaN-aware. */
  function smooth(flux, sigma, weights) {
    const n = flux.length;
    const half = (weights.length - 1) / 2;
    const outFlux = new Float32Array(n);
    const outSigma = new Float32Array(sigma.length ? n : 0);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      let norm = 0;
      let variance = 0;
      let known = true;
      for (let k = -half; k <= half; k++) {
        const j = i + k;
        if (j < 0 || j >= n || !Number.isFinite(flux[j])) continue;
        const w = weights[k + half];
        sum += w * flux[j];
        norm += w;
        if (sigma.length) {
          if (Number.isFinite(sigma[j])) variance += w * w * sigma[j] * sigma[j];
          else known = false;
        }
      }
      outFlux[i] = Number.isFinite(flux[i]) && norm > 0 ? sum / norm : NaN;
      if (sigma.length) outSigma[i] = known && norm > 0 && Number.isFinite(sigma[i]) ? Math.sqrt(variance) / norm : NaN;
    }
    return { flux: outFlux, sigma: outSigma };
  }

  /** The row's native flux and sigma as shown now (cached on the row per mode). */
  function shown(row, flux, sigma) {
    const weights = MODES.find(([m]) => m === mode)[2];
    if (!weights || !flux || !flux.length) return { flux, sigma };
    if (!row.smoothCache || row.smoothCache.mode !== mode) {
      row.smoothCache = { mode, ...smooth(flux, sigma || new Float32Array(0), weights) };
    }
    return row.smoothCache;
  }

  /** A label with the select, and the key hint; `onChange(mode)` redraws. */
  function controls(onChange) {
    listeners.push(onChange);
    const select = document.createElement("select");
    select.className = "smoothing";
    select.setAttribute("aria-label", "smoothing of the native spectrum (key b)");
    for (const [value, text] of MODES) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      select.append(option);
    }
    select.value = mode;
    select.addEventListener("change", () => { set(select.value); select.blur(); });
    const label = document.createElement("label");
    label.className = "smoothing-label";
    const key = document.createElement("kbd");
    key.textContent = "o";
    label.append(key, " smooth ", select);
    return label;
  }

  /** Shade dead runs, mark spikes; x: wavelength -> canvas x, box: the plot frame. */
  function drawDefects(ctx, defects, sx, box, view) {
    if (!defects) return;
    ctx.save();
    ctx.fillStyle = "rgba(185, 28, 28, 0.16)";
    for (const [lo, hi] of defects.dead || []) {
      if (hi < view.lo || lo > view.hi) continue;
      const x0 = sx(lo) - 2;
      ctx.fillRect(x0, box.t, Math.max(4, sx(hi) - x0 + 2), box.b - box.t);
    }
    ctx.strokeStyle = "#b91c1c";
    ctx.fillStyle = "#b91c1c";
    ctx.lineWidth = 1.5;
    for (const at of defects.spikes || []) {
      if (at < view.lo || at > view.hi) continue;
      const x = sx(at);
      ctx.beginPath(); // a downward triangle above the frame's top: "this pixel is a hit"
      ctx.moveTo(x - 4, box.t + 1);
      ctx.lineTo(x + 4, box.t + 1);
      ctx.lineTo(x, box.t + 8);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  }

  const signed = (x) => `${x < 0 ? "−" : ""}${Math.abs(x).toFixed(1)}`;

  /** Words for H-alpha from spectrum.ew_halpha = [EW Å (negative: emission), sigma Å]. */
  function describeHalpha(spectrum) {
    const [ew, error] = (spectrum && spectrum.ew_halpha) || [null, null];
    if (ew === null || ew === undefined) return "EW(Hα) not measurable (too few good pixels)";
    if (error === null || error === undefined || !(error > 0)) {
      return `EW(Hα) ${signed(ew)} Å, its error unknown (no inverse variance in the file)`;
    }
    const text = `EW ${signed(ew)} ± ${error.toFixed(1)} Å`;
    if (Math.abs(ew) < SIGNIFICANT * error) return `no significant Hα emission or absorption (${text})`;
    return ew < 0 ? `Hα in emission, ${text}` : `Hα in absorption, ${text}`;
  }

  /** Words for the marks drawn, '' when none. */
  function describeDefects(spectrum) {
    const defects = spectrum && spectrum.defects;
    if (!defects) return "";
    const parts = [];
    for (const [lo, hi] of defects.dead || []) parts.push(`dead pixels ${lo.toFixed(0)}–${hi.toFixed(0)} Å (shaded)`);
    if ((defects.spikes || []).length) {
      parts.push(`cosmic-ray spike at ${defects.spikes.map((x) => x.toFixed(0)).join(", ")} Å (marked)`);
    }
    return parts.join("; ");
  }

  return { MODES, cycle, set, smooth, shown, controls, drawDefects, describeHalpha, describeDefects,
    get mode() { return mode; } };
})();
