/* alvo oracle: the labelling guide beside the zoom (docs/labelling.md).
 *
 * Per class, real labelled spectra of the campaign's own source set (the most
 * typical ones: ../campaigns/{name}/guide), drawn as the rows are (native flux above,
 * the adapted vector below), and the written convention for each hard case (emission
 * core in absorption, shoulder, shell, P Cygni, artefacts) from the same file the
 * documentation quotes. h shows or hides it (beside the zoom; from the rows it opens
 * the zoom of the current row with the guide); the header's "guide" button too.
 */
"use strict";

window.AlvoGuide = (() => {
  let page = null;
  let doc = null;
  let loading = null;
  let rendered = false;
  const shownKey = () => `${page.storeKey}:guide`;
  const VIEW = { lo: 6500, hi: 6640 };

  function init(p) {
    page = p;
    const { h, $ } = page;
    $("#grid-open") ? $("#grid-open").after(guideButton(h)) : $("header.bar .line .spacer").before(guideButton(h));
    $("#guide-open").addEventListener("click", () => toggle(true));
    const dialog = $("#zoom");
    dialog.append(h("aside", { id: "guide", class: "guide", "aria-labelledby": "guide-title", hidden: true },
      h("div", { class: "guide-head" }, h("h2", { id: "guide-title" }, "Labelling guide"),
        h("button", { type: "button", id: "guide-close", "aria-label": "hide the guide (h)" }, "hide (h)")),
      h("div", { id: "guide-body" }, h("p", { class: "muted" }, "Loading the guide…"))));
    $("#guide-close").addEventListener("click", () => show(false));
  }

  function guideButton(h) {
    return h("button", { type: "button", id: "guide-open", "aria-haspopup": "dialog",
      title: "typical spectra of each class and the conventions for the hard cases (h)" }, "guide (h)");
  }

  function wanted() {
    return localStorage.getItem(shownKey()) !== "hidden";
  }

  async function fetchGuide() {
    if (doc) return doc;
    if (!loading) {
      loading = fetch(`${page.api}/guide`).then(async (response) => {
        const reply = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(reply.error || `HTTP ${response.status}`);
        doc = reply;
        return doc;
      }).finally(() => { loading = null; });
    }
    return loading;
  }

  function exemplar(item, grids) {
    const { h } = page;
    const name = `${item.label} exemplar: ${item.designation || item.pubdid}`;
    const canvas = h("canvas", { class: "guide-plot", role: "img",
      "aria-label": `${name}, ${item.collection || "source set"}, labelled ${item.label}` });
    const figure = h("figure", { class: "guide-ex" }, canvas,
      h("figcaption", {}, item.designation || item.pubdid));
    const spectrum = item.spectrum || {};
    const data = {
      wavelength: grids[spectrum.grid] || new Float32Array(0),
      flux: spectrum.flux ? AlvoPlot.floats(spectrum.flux) : new Float32Array(0),
      sigma: spectrum.sigma ? AlvoPlot.floats(spectrum.sigma) : null,
      adapted: AlvoPlot.floats(item.adapted),
      grid: AlvoPlot.grid(doc.grid),
      error: spectrum.error,
      unit: "source flux",
      lines: page.state.doc ? page.state.doc.lines : undefined,
    };
    return { figure, draw: () => AlvoPlot.spectrum(canvas, data, VIEW, { size: [250, 104] }) };
  }

  function render() {
    const { h, $ } = page;
    const grids = (doc.wavelengths || []).map(AlvoPlot.floats);
    const drawings = [];
    const classes = Object.entries(doc.classes || {}).map(([label, items]) => {
      const drawn = items.map((item) => exemplar(item, grids));
      drawings.push(...drawn);
      return h("section", { class: "guide-class", "data-class": label },
        h("h3", {}, h("span", { class: `pclass ${label}` }, label), ` (${items.length})`),
        h("div", { class: "guide-exs" }, ...drawn.map((d) => d.figure)));
    });
    $("#guide-body").replaceChildren(
      h("p", { class: "muted" }, `Typical spectra: ${doc.chosen}.`),
      ...(classes.length ? classes : [h("p", {}, "The source set has no labelled spectrum to show.")]),
      h("h3", {}, "Hard cases"),
      h("p", { class: "muted" }, doc.about || ""),
      h("dl", { class: "conventions" }, ...(doc.conventions || []).flatMap((c) => [
        h("dt", { id: `convention-${c.id}` }, c.case, " → ", h("span", { class: `pclass ${c.label}` }, c.label)),
        h("dd", {}, c.rule)])));
    drawings.forEach((d) => d.draw());
    rendered = true;
  }

  /** The class predicted for the zoomed row is marked in the guide. */
  function mark(row) {
    for (const section of document.querySelectorAll("#guide .guide-class")) {
      section.classList.toggle("predicted", !!row && section.dataset.class === row.predicted);
    }
  }

  async function show(on, row) {
    const { $ } = page;
    localStorage.setItem(shownKey(), on ? "shown" : "hidden");
    $("#guide").hidden = !on;
    $("#zoom").classList.toggle("with-guide", on);
    if (!on) return;
    try {
      await fetchGuide();
      if (!rendered) render(); // drawn once: the exemplars do not change with the row
      mark(row || null);
    } catch (error) {
      $("#guide-body").textContent = `The guide could not be loaded: ${error.message}`;
    }
  }

  /** Open the guide: beside the zoom of the current row (the zoom opens if need be). */
  function toggle(on) {
    const { $ } = page;
    const zoomOpen = $("#zoom").open;
    if (zoomOpen) { show(on ?? $("#guide").hidden, page.zoomedRow()); return; }
    localStorage.setItem(shownKey(), "shown");
    const row = page.rowAt(page.state.cursor);
    if (row) page.zoom(row); // zoomed() below shows the guide
    else show(true);
  }

  function zoomed(row) {
    if (wanted()) show(true, row);
    else page.$("#guide").hidden = true;
  }

  function key(event) {
    if (event.key !== "h" || event.ctrlKey || event.altKey || event.metaKey) return false;
    if (document.querySelector("dialog[open]:not(#zoom)")) return false;
    toggle();
    return true;
  }

  return { init, key, zoomed, render, show };
})();
