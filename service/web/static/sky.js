/* alvo oracle: the sky panel of the labelling page (Aladin Lite).
 *
 * AlvoSky.show(row) puts the current spectrum's position in the panel: Aladin Lite
 * (served by the service at sky/aladin-lite.js, never a CDN) centred on it, its fibre
 * drawn to scale, the other spectra of the tables in the field marked and listed.
 * The service's ../sky says which survey to draw (the demo archive's own local HiPS
 * where it covers the position, else ALVO_HIPS) and which spectra are near. The
 * survey is probed before Aladin Lite is started: unreachable (offline), the panel
 * says so and lists the neighbours; the rest of the page does not depend on it.
 */
"use strict";

const AlvoSky = (() => {
  const PROBE_MS = 6000;
  const FIELD_ARCMIN = 2; // as service/web/sky.py's FIELD_ARCMIN (the script has no /sky)
  const state = { root: "../", panel: null, aladin: null, A: null, survey: null, overlays: [],
    probes: new Map(), pending: null, shown: null, drawn: 0 };
  window.alvoSky = state; // for the tests and people poking at the page

  const $ = (sel) => document.querySelector(sel);
  const fmt = (x, n) => Number(x).toFixed(n);

  /** Build the panel (once) at the end of <body>. */
  function mount(root) {
    state.root = root;
    const aside = document.createElement("aside");
    aside.id = "sky";
    aside.className = "sky";
    aside.setAttribute("aria-label", "sky around the current spectrum");
    aside.innerHTML =
      `<details id="sky-details"${window.matchMedia("(max-width: 900px)").matches ? "" : " open"}>` +
      `<summary>Sky <span id="sky-where" class="muted"></span></summary>` +
      `<div id="sky-view" class="sky-view" role="img" aria-label="sky image around the spectrum"></div>` +
      `<p id="sky-status" class="sky-status muted" role="status"></p>` +
      `<ol id="sky-neighbours" class="sky-neighbours" aria-label="other spectra in the field, nearest first"></ol>` +
      `</details>`;
    document.body.append(aside);
    state.panel = aside;
    $("#sky-details").addEventListener("toggle", () => { if (state.shown) show(state.shown, 0); });
  }

  function say(text) {
    $("#sky-status").textContent = text;
  }

  /** Show a row ({id, ra, dec, designation}); quick key presses only draw the last one. */
  function show(row, delayMs = 200) {
    if (!state.panel || !row) return;
    state.shown = row;
    clearTimeout(state.pending);
    state.pending = setTimeout(() => draw(row), delayMs);
  }

  async function draw(row) {
    if (row.ra === null || row.ra === undefined || row.dec === null || row.dec === undefined) {
      $("#sky-where").textContent = "";
      say("this spectrum has no position");
      return;
    }
    $("#sky-where").textContent = `${fmt(row.ra, 5)} ${row.dec >= 0 ? "+" : ""}${fmt(row.dec, 5)}`;
    if (!$("#sky-details").open) return;
    let sky;
    try {
      const url = `${state.root}sky?RA=${row.ra}&DEC=${row.dec}&ID=${row.id}`;
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      sky = await response.json();
    } catch (error) {
      say(`no sky context: ${error.message || error}`);
      return;
    }
    if (state.shown !== row) return; // another row was chosen meanwhile
    listNeighbours(sky);
    if (!sky.survey) { say("no sky survey configured (ALVO_HIPS=off)"); return; }
    if (!sky.aladin_lite) {
      say(`Aladin Lite ${sky.aladin_lite_version} is not installed on this service ('make aladin-lite'): no image`);
      return;
    }
    const reachable = await probe(sky.survey);
    if (state.shown !== row) return;
    if (!reachable) {
      say(`the sky survey ${sky.survey.name} cannot be reached (offline?): no image. ` +
        "Labelling works as before.");
      return;
    }
    try {
      await ensureAladin(sky);
      place(sky);
      state.drawn += 1;
      say(`${sky.survey.name}; circle: the ${sky.fibre_diameter_arcsec}″ fibre; ` +
        `squares: ${sky.neighbours.length} other spectra within ${sky.field_arcmin}′`);
    } catch (error) {
      say(`Aladin Lite failed: ${error.message || error}`);
    }
  }

  function absolute(path) {
    return /^https?:/.test(path) ? path : new URL(`${state.root}${path}`, location.href).href;
  }

  /** Whether the survey answers (once per survey; a HiPS server or the MocServer). */
  function probe(survey) {
    const key = survey.probe;
    if (!state.probes.has(key)) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), PROBE_MS);
      state.probes.set(key, fetch(absolute(key), { signal: controller.signal })
        .then((r) => r.ok).catch(() => false).finally(() => clearTimeout(timer)));
    }
    return state.probes.get(key);
  }

  async function ensureAladin(sky) {
    const hips = sky.survey.url ? absolute(sky.survey.url) : sky.survey.id;
    if (!state.A) {
      const module = await import(absolute(sky.aladin_lite));
      state.A = module.default;
      await state.A.init;
    }
    const A = state.A;
    if (!state.aladin) {
      state.aladin = A.aladin("#sky-view", {
        survey: hips, fov: (2 * sky.field_arcmin) / 60, target: `${sky.ra} ${sky.dec}`,
        log: false, hipsList: [], showReticle: false, showLayersControl: false,
        showGotoControl: false, showFrame: false, showCooGridControl: false,
        showProjectionControl: false, showSimbadPointerControl: false,
        showFullscreenControl: false, showShareControl: false, showSettingsControl: false,
        showZoomControl: false, showContextMenu: false, showStatusBar: false,
        showCooLocation: false, showFov: false,
      });
      state.survey = hips;
    } else if (state.survey !== hips) {
      state.aladin.setImageSurvey(hips);
      state.survey = hips;
    }
  }

  function place(sky) {
    const A = state.A;
    const aladin = state.aladin;
    aladin.gotoRaDec(sky.ra, sky.dec);
    aladin.setFoV((2 * sky.field_arcmin) / 60);
    for (const overlay of state.overlays) aladin.removeLayer(overlay);
    const fibre = A.graphicOverlay({ name: "fibre", color: "#f97316", lineWidth: 2 });
    aladin.addOverlay(fibre);
    fibre.add(A.circle(sky.ra, sky.dec, sky.fibre_diameter_arcsec / 2 / 3600));
    const field = A.catalog({ name: "spectra in the field", shape: "square", sourceSize: 12, color: "#22d3ee" });
    aladin.addCatalog(field);
    field.addSources(sky.neighbours.map((n) => A.source(n.ra, n.dec, { name: n.designation })));
    state.overlays = [fibre, field];
  }

  function listNeighbours(sky) {
    const list = $("#sky-neighbours");
    list.replaceChildren(...sky.neighbours.slice(0, 8).map((n) => {
      const item = document.createElement("li");
      item.textContent = `${n.designation || n.spectrum_id} ${fmt(n.separation_arcsec, 1)}″` +
        (n.collection ? ` (${n.collection})` : "");
      item.dataset.spectrumId = String(n.spectrum_id);
      return item;
    }));
    if (!sky.neighbours.length) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = `no other spectrum within ${sky.field_arcmin}′`;
      list.append(item);
    }
  }

  /** The Aladin (desktop) script sent with the s key beside coord.pointAt.sky: the
   * field in view. (Aladin 12 moves on a script of coordinates too, but then faults
   * instead of answering the call: coord.pointAt.sky moves it.) */
  function aladinScript(row) {
    return `zoom ${2 * FIELD_ARCMIN}arcmin`;
  }

  return { mount, show, aladinScript };
})();
