/* alvo oracle: the labelling page of one campaign's query batch.
 *
 * One request loads the whole batch (../campaigns/{name}/batch); every plot is
 * drawn here. Labels are keyed (1-5), saved as they are made through a queue
 * kept in localStorage until the service acknowledges them, so closing the tab
 * loses nothing; undo takes back the latest verdict on the server too.
 */
"use strict";

(() => {
  const body = document.body;
  const root = body.dataset.root || "../";
  const campaign = body.dataset.campaign;
  const api = `${root}campaigns/${encodeURIComponent(campaign)}`;
  const query = new URLSearchParams(location.search);
  const storeKey = `alvo-oracle:${campaign}`;
  const started = performance.now();
  const NARROW = { lo: 6500, hi: 6640 };
  const WIDE = { lo: 6500, hi: 6740 };
  const ROLE_NAMES = { query: "query", "precision-sample": "precision sample", padding: "padding", candidate: "candidate",
    surprise: "surprise", similar: "similar" };
  const SERVER_VIEWS = { candidates: "candidate", surprises: "surprise" }; // filters the service answers

  const state = {
    doc: null,
    rows: [],
    byId: new Map(),
    view: [], // indices into rows after the filter
    cursor: 0, // index into view
    filter: query.get("filter") || "all",
    undo: [], // [{id, previous, position}], kept in localStorage per iteration
    wide: false,
    exemplars: false,
    queue: loadQueue(),
    sending: false,
    lastError: "",
    // a label POST with no answer by then is sent again (a label sent twice is stored once:
    // the service answers "unchanged"); an undo is not, as a second one would take back more
    postTimeoutMs: 30000,
    samp: null,
    job: JSON.parse(localStorage.getItem(`${storeKey}:job`) || "null"),
  };
  window.alvo = state; // for people poking at the page (and the tests)
  /** The page's own modules (notes.js, grid.js, guide.js, loaded before this file): each
   * may answer a hook; ``key`` returns true when it took the key press. */
  const modules = () => [window.AlvoNotes, window.AlvoGrid, window.AlvoGuide].filter(Boolean);
  const hook = (name, ...args) => modules().some((m) => typeof m[name] === "function" && m[name](...args));

  // --- layout ------------------------------------------------------------------------------------
  const $ = (sel, node = document) => node.querySelector(sel);
  const h = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  };

  body.classList.add("labelling");
  body.append(
    h("header", { class: "bar" },
      h("div", { class: "line" },
        h("a", { href: root, class: "home" }, "alvo"),
        h("span", { class: "crumb", "aria-hidden": "true" }, " › "),
        h("a", { href: `${root}oracle`, class: "overview-crumb" }, "overview"),
        h("span", { class: "crumb overview-crumb", "aria-hidden": "true" }, " › "),
        h("h1", {}, campaign),
        h("label", { class: "iter" }, " iteration ", h("select", { id: "iteration", "aria-label": "iteration" })),
        h("span", { id: "count", class: "count", "aria-live": "polite" }),
        h("span", { id: "sync", class: "sync", "aria-live": "polite" }),
        h("button", { type: "button", id: "bar-more", class: "more", "aria-expanded": "false",
          "aria-controls": "keys tools" }, "more ▾"),
        h("span", { class: "spacer" }),
        h("label", { class: "filter-label" }, "show ",
          h("select", { id: "filter", "aria-label": "filter" },
            ...[["all", "all rows"], ["todo", "not labelled yet"], ["done", "labelled"],
              ["query", "query rows"], ["precision-sample", "precision sample"],
              ["padding", "padding (no candidate left)"],
              ["conflicts", "conflicts"], ["pred-single-peak", "predicted single-peak"],
              ["pred-double-peak", "predicted double-peak"], ["candidates", "candidates (top 500)"],
              ["surprises", "surprises (most unusual first)"]]
              .map(([v, t]) => h("option", { value: v }, t)))),
        h("input", { id: "search", type: "search", placeholder: "designation / SIMBAD", "aria-label": "search (Esc leaves)" })),
      h("div", { class: "line keys", id: "keys" },
        h("span", {}, h("kbd", {}, "1"), " single-peak"),
        h("span", {}, h("kbd", {}, "2"), " double-peak"),
        h("span", {}, h("kbd", {}, "3"), " absorption"),
        h("span", {}, h("kbd", {}, "4"), " not sure"),
        h("span", {}, h("kbd", {}, "5"), " bad"),
        h("span", {}, h("kbd", {}, "i"), "/", h("kbd", {}, "b"), " interesting / boring"),
        h("span", {}, h("kbd", {}, "m"), " more like this"),
        h("span", {}, h("kbd", {}, "u"), "/", h("kbd", {}, "Ctrl-Z"), " undo"),
        h("span", {}, h("kbd", {}, "j"), h("kbd", {}, "k"), " next / previous"),
        h("span", {}, h("kbd", {}, "z"), " zoom"),
        h("span", {}, h("kbd", {}, "e"), " exemplars"),
        h("span", {}, h("kbd", {}, "w"), " wide window"),
        AlvoQuality.controls(() => { drawAll(); drawZoom(); }),
        h("span", {}, h("kbd", {}, "s"), " to SAMP (spectrum + position)"),
        h("span", {}, h("kbd", {}, "/"), " search"),
        h("span", { class: "legend" },
          h("i", { class: "sw native" }), " native flux ",
          h("i", { class: "sw band" }), " ±1σ ",
          h("i", { class: "sw adapted" }), " adapted 140 px (z) ",
          h("i", { class: "sw twin" }), " same star, other spectrum ",
          h("i", { class: "sw halpha" }), " Hα ",
          h("i", { class: "sw dead" }), " dead pixels ",
          h("i", { class: "sw spike" }), " cosmic ray ",
          h("i", { class: "sw query" }), " query ",
          h("i", { class: "sw sample" }), " precision sample")),
      h("div", { class: "line tools", id: "tools" },
        h("button", { id: "samp-connect", type: "button" }, "Connect SAMP"),
        h("button", { id: "samp-table", type: "button", disabled: true,
          title: "send the batch as a VOTable (TOPCAT, Aladin)" }, "Batch → TOPCAT"),
        h("button", { id: "samp-moc", type: "button", disabled: true,
          title: "send the pool's footprint as a MOC (Aladin draws it over the sky)" }, "Footprint → Aladin"),
        h("span", { id: "samp-status", class: "muted" }),
        h("span", { class: "spacer" }),
        h("span", { class: "muted" }, "labels: "),
        h("a", { id: "export-votable", href: `${api}/labels?FORMAT=votable`, download: `${campaign}-labels.vot` }, "VOTable"),
        h("a", { id: "export-csv", href: `${api}/labels?FORMAT=csv`, download: `${campaign}-labels.csv` }, "CSV"),
        h("form", { id: "import", class: "import" },
          h("label", {}, "import ", h("input", { type: "file", name: "file", accept: ".vot,.xml,.csv", "aria-label": "labels file" })),
          h("button", { type: "submit" }, "Upload")),
        h("details", { class: "advanced" },
          h("summary", {}, "options"),
          h("label", {}, "model ", h("select", { name: "MODEL" }, h("option", { value: "" }, "default"),
            h("option", { value: "reference" }, "reference"), h("option", { value: "small" }, "small"))),
          h("label", {}, "epochs ", h("input", { name: "EPOCHS", type: "number", min: 1, size: 4 })),
          h("label", { title: "when too few candidates are left: this many spectra predicted as absorption, at random" },
            "absorption sample ", h("input", { name: "PADDING", type: "number", min: 0, size: 4 })),
          h("label", {}, "strategy ", h("select", { name: "STRATEGY" }, h("option", { value: "" }, "entropy"),
            ...["margin", "least-confidence", "random", "diverse-entropy"].map((s) => h("option", { value: s }, s))))),
        h("button", { id: "iterate", type: "button", class: "primary" }, "Start next iteration"),
        h("span", { id: "job", class: "job", "aria-live": "polite" },
          h("progress", { id: "job-progress", max: 1, value: 0, hidden: true, "aria-label": "iteration progress" }),
          h("span", { id: "job-state" }))),
      h("div", { id: "notice", class: "notice", role: "status", hidden: true },
        h("span", { id: "notice-text" }),
        h("button", { type: "button", id: "notice-close", "aria-label": "dismiss the message" }, "×"))),
    h("section", { id: "composition", class: "composition", "aria-label": "what this batch is", hidden: true }),
    h("main", { id: "rows", class: "rows", tabindex: 0, role: "group",
      "aria-label": "batch: j/k or arrows move, keys 1-5 label the current spectrum" }),
    h("dialog", { id: "zoom", "aria-label": "zoomed spectrum" },
      h("div", { class: "zoomhead" }, h("strong", { id: "zoom-title" }),
        h("span", { class: "muted" }, " wheel: zoom · drag: pan · r: reset · e: exemplars · Esc: close"),
        h("button", { type: "button", id: "zoom-close" }, "Close")),
      h("canvas", { id: "zoom-canvas", class: "zoomplot" }),
      h("div", { id: "zoom-legend", class: "legend" }))
  );

  const sky = typeof AlvoSky === "undefined" ? null : AlvoSky; // static/sky.js: the sky panel
  if (sky) sky.mount(root);

  $("#bar-more").addEventListener("click", (event) => {
    const open = $("header.bar").classList.toggle("open");
    event.currentTarget.setAttribute("aria-expanded", String(open));
    event.currentTarget.textContent = open ? "less ▴" : "more ▾";
  });

  // --- data ------------------------------------------------------------------------------------------
  async function load(iteration) {
    const params = new URLSearchParams();
    if (iteration !== null && iteration !== undefined && iteration !== "") params.set("ITERATION", iteration);
    if (SERVER_VIEWS[state.filter]) params.set("ROLE", SERVER_VIEWS[state.filter]);
    const asked = performance.now();
    // exactly the URL the page preloads (pages.py), so the first load reuses that request
    const response = await fetch(`${api}/batch${params.size ? `?${params}` : ""}`);
    if (!response.ok) {
      showNotice(`Could not load the batch: ${(await response.json().catch(() => ({}))).error || response.status}`, true);
      return;
    }
    const doc = await response.json();
    const loaded = performance.now();
    const another = state.doc && state.doc.iteration !== doc.iteration;
    const opened = !state.doc || another; // a batch seen for the first time in this tab
    state.doc = doc;
    state.grid = AlvoPlot.grid(doc.grid);
    state.exemplarData = Object.fromEntries(
      Object.entries(doc.exemplars).map(([k, v]) => [k, AlvoPlot.floats(v.mean)]));
    state.grids = (doc.wavelengths || []).map(AlvoPlot.floats); // extra batches (m) add theirs
    state.wideGrids = (doc.overview_wavelengths || []).map(AlvoPlot.floats);
    const native = (spectrum) => ({
      wavelength: state.grids[spectrum.grid] || new Float32Array(0),
      flux: AlvoPlot.floats(spectrum.flux),
      sigma: AlvoPlot.floats(spectrum.sigma),
    });
    // arrays are decoded when a row is first drawn: most rows are off screen at first
    state.decode = (row) => {
      if (row.adaptedData) return row;
      const own = native(row.spectrum);
      return Object.assign(row, {
        adaptedData: AlvoPlot.floats(row.adapted),
        wavelengthData: own.wavelength, fluxData: own.flux, sigmaData: own.sigma,
        overviewData: row.overview && row.overview.flux
          ? { wavelength: state.wideGrids[row.overview.grid], flux: AlvoPlot.floats(row.overview.flux) } : null,
        twinData: (row.twins || []).filter((t) => t.spectrum && t.spectrum.flux)
          .map((t) => ({ ...native(t.spectrum), name: twinName(t) })),
      });
    };
    state.rows = doc.rows.map((row, index) => ({ ...row, index }));
    state.byId = new Map(state.rows.map((row) => [row.id, row]));
    state.undo = loadUndo();
    applyQueue();
    hook("loaded");
    const iterations = $("#iteration");
    iterations.replaceChildren(...(doc.iterations.length ? doc.iterations : [doc.iteration ?? "–"])
      .map((n) => h("option", { value: n, selected: n === doc.iteration ? "" : null }, String(n))));
    if (another) window.scrollTo(0, 0);
    if (opened) state.cursor = firstUnlabelled(); // a reload resumes where the oracle was
    render();
    describeBatch();
    if (state.cursor > 0) select(state.cursor); // and shows that row
    state.timing = { batchMs: loaded - asked, renderMs: performance.now() - loaded };
    for (const like of AlvoSurprises.asked(storeKey, doc.iteration)) await moreLikeThis(like, false);
  }

  /** Key m: the spectrum's nearest neighbours join the page as an extra batch (role similar). */
  async function moreLikeThis(like, fresh = true) {
    if (!like || !state.doc) return;
    let doc;
    try {
      doc = await AlvoSurprises.neighbours(api, like, state.doc.iteration);
    } catch (error) {
      if (fresh) showNotice(`No neighbours for ${like}: ${error.message}`, true);
      return;
    }
    AlvoSurprises.remember(storeKey, state.doc.iteration, like);
    const added = AlvoSurprises.merge(state, doc, AlvoPlot.floats);
    state.lastSimilar = { like, added: added.length, onPage: doc.rows.length - added.length };
    applyQueue();
    const current = rowAt(state.cursor);
    render();
    if (!fresh) return;
    const first = added.length ? state.view.indexOf(added[0].index) : -1;
    if (first >= 0) select(first);
    else if (current) select(state.view.indexOf(current.index));
    const onPage = state.lastSimilar.onPage ? ` ${state.lastSimilar.onPage} more are on the page already.` : "";
    showNotice(added.length ? `${added.length} spectra like ${like} added at the end (role similar).${onPage}`
      : `The ${doc.rows.length} spectra most like ${like} are on the page already.`);
  }

  function loadQueue() {
    try {
      return JSON.parse(localStorage.getItem(storeKey) || "[]");
    } catch {
      return [];
    }
  }

  function saveQueue() {
    localStorage.setItem(storeKey, JSON.stringify(state.queue));
  }

  /** Undo history of this iteration's batch: it survives a reload, as the labels do. */
  const undoKey = () => `${storeKey}:undo:${state.doc ? state.doc.iteration : ""}`;

  function loadUndo() {
    try {
      return JSON.parse(localStorage.getItem(undoKey()) || "[]").filter((u) => state.byId.has(u.id));
    } catch {
      return [];
    }
  }

  function saveUndo() {
    localStorage.setItem(undoKey(), JSON.stringify(state.undo.slice(-500)));
  }

  function twinName(t) {
    return `${t.collection || "spectrum"} ${t.designation || t.spectrum_id}${t.mjd !== null && t.mjd !== undefined ? ` MJD ${t.mjd.toFixed(1)}` : ""}`;
  }

  /** Show verdicts not yet acknowledged by the service (left by a closed tab). */
  function applyQueue() {
    for (const op of state.queue) {
      const row = state.byId.get(op.spectrum_id);
      if (!row) continue;
      row[op.field || "mine"] = op.kind === "label" ? op.label : op.previous;
      if (op.comment !== undefined) Object.assign(row, { comment: op.comment, flag: op.flag });
    }
  }

  // --- rendering ------------------------------------------------------------------------------------
  function filtered() {
    const text = ($("#search").value || "").trim().toLowerCase();
    return state.rows.filter((row) => {
      if (text && !`${row.designation || ""} ${row.simbad || ""} ${row.object || ""} ${row.pubdid}`
        .toLowerCase().includes(text)) return false;
      if (row.role === "similar") return true; // an extra batch asked for (m): always shown
      switch (state.filter) {
        case "todo": return !AlvoSurprises.judged(row, state.filter);
        case "done": return AlvoSurprises.judged(row, state.filter);
        case "query": return row.role === "query";
        case "precision-sample": return row.role === "precision-sample";
        case "padding": return row.role === "padding";
        case "conflicts": return conflict(row);
        case "pred-single-peak": return row.predicted === "single-peak";
        case "pred-double-peak": return row.predicted === "double-peak";
        default: return true;
      }
    }).map((row) => row.index);
  }

  function conflict(row) {
    const verdicts = new Set(Object.entries(row.labels || {})
      .filter(([user]) => user !== state.doc.user).map(([, v]) => v));
    if (row.mine) verdicts.add(row.mine);
    return verdicts.size > 1;
  }

  function render() {
    const main = $("#rows");
    const t0 = performance.now();
    state.view = filtered();
    state.cursor = Math.min(state.cursor, Math.max(0, state.view.length - 1));
    const cards = state.view.map((i) => cardHtml(state.rows[i]));
    const t1 = performance.now();
    main.innerHTML = cards.join("");
    if (!cards.length) main.append(h("p", { class: "empty" }, state.rows.length
      ? "No row matches the filter."
      : state.doc && state.doc.iteration !== null && state.filter === "surprises"
        ? `Iteration ${state.doc.iteration} has no ranked surprises (an iterate job ranks them: SURPRISES).`
      : state.doc && state.doc.iteration !== null
        ? `Iteration ${state.doc.iteration} has no spectrum to label (see above).`
        : "No query batch yet: start an iteration."));
    const t2 = performance.now();
    drawAll();
    state.renderTiming = { cards: t1 - t0, insert: t2 - t1, draw: performance.now() - t2 };
    select(state.cursor, false);
    updateCount();
  }

  /** EW(Hα) ± 1σ in Å from the native pixels (negative: emission), as astronomers read it. */
  const ewText = (row) => {
    const [ew, error] = (row.spectrum && row.spectrum.ew_halpha) || [null, null];
    if (ew === null || ew === undefined) return "";
    return `EW(Hα) ${ew < 0 ? "−" : ""}${Math.abs(ew).toFixed(1)}${error !== null ? ` ± ${error.toFixed(1)}` : ""} Å`;
  };
  const fmt = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

  /** Text for HTML: a card is built as one string (130 cards parse at once, ~5x faster
   * than element by element); its buttons are handled by one listener on the batch. */
  const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const tag = (name, attrs, inner = "") => `<${name}${Object.entries(attrs)
    .filter(([, v]) => v !== null && v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? ` ${k}` : ` ${k}="${esc(v)}"`)).join("")}>${inner}</${name}>`;

  function cardHtml(row) {
    const name = row.designation || row.object || row.pubdid;
    const current = state.view[state.cursor] === row.index;
    const probs = state.doc.classes.map((cls, i) => tag("span", { class: `prob ${cls}`, title: `p(${cls}) = ${fmt(row.p[i], 3)}` },
      tag("span", { class: "pname" }, short(cls)) +
      tag("span", { class: "pbar", "aria-hidden": "true" }, tag("i", { style: `width:${Math.round(row.p[i] * 100)}%` })) +
      tag("span", { class: "pval" }, fmt(row.p[i])))).join("");
    const others = Object.entries(row.labels || {}).filter(([user]) => user !== state.doc.user);
    const meta = [`${fmt(row.ra, 5)} ${row.dec >= 0 ? "+" : ""}${fmt(row.dec, 5)}`,
      row.mag !== null ? `${fmt(row.mag, 1)} mag` : "mag –", `MJD ${row.mjd !== null ? fmt(row.mjd, 2) : "–"}`,
      row.snr !== null ? `S/N ${fmt(row.snr, 0)}` : "", ewText(row), row.collection || "",
      row.quality_flag ? `⚠ ${row.quality_flag.replace(",", ", ")}` : "",
      row.pipeline_class ? `pipeline ${row.pipeline_class}` : ""].filter(Boolean).map(esc).join(" · ");
    const buttons = Object.entries(state.doc.keys).map(([key, verdict]) => tag("button", {
      type: "button", class: `vbtn ${verdict}${row.mine === verdict ? " chosen" : ""}`, "data-verdict": verdict,
      title: `label it ${verdict} (key ${key})`, "aria-pressed": row.mine === verdict ? "true" : "false",
    }, `<kbd>${key}</kbd> ${esc(verdict.replace("-", " "))}`)).join("") +
      AlvoSurprises.buttons(state.doc, row, tag, esc);
    const link = row.datalink_url
      ? tag("a", { href: row.datalink_url, target: "_blank", rel: "noopener", title: "DataLink: the file, previews, cutouts" }, "DataLink")
      : row.access_url ? tag("a", { href: row.access_url, target: "_blank", rel: "noopener" }, "file") : "";
    const line = (cls, text, title) => tag("div", { class: cls, title }, esc(text));
    return tag("article", {
      class: `row role-${row.role}${current ? " current" : ""}`, id: `row-${row.id}`, "data-id": row.id,
      "aria-labelledby": `name-${row.id}`, "aria-current": current ? "true" : null,
    },
    tag("div", { class: "num", "aria-hidden": "true" }, String(row.index + 1)) +
    tag("canvas", { class: "plot", role: "img", "aria-label": row.described || `Spectrum of ${name} around H-alpha` }) +
    tag("div", { class: "info" },
      tag("div", { class: "head" },
        tag("h2", { class: "desig", id: `name-${row.id}`, title: row.pubdid }, esc(name)) +
        tag("span", { class: `badge ${row.role}`, title: row.reason || "" }, esc(ROLE_NAMES[row.role] || row.role)) +
        tag("span", { class: `verdict ${row.mine || "none"}` }, esc(row.mine || "not labelled")) +
        AlvoSurprises.badge(row, tag, esc)) +
      (row.reason ? line("reason", row.reason) : "") +
      tag("div", { class: "pred" }, tag("span", { class: `pclass ${row.predicted}` }, esc(row.predicted)) +
        tag("span", { class: "entropy", title: "entropy of the class probabilities (nat)" }, ` H ${fmt(row.entropy)}`) +
        (row.hou ? tag("span", { class: "muted", title: "Hou et al. (2016) rule" }, ` · Hou: ${esc(row.hou)}`) : "")) +
      tag("div", { class: "probs" }, probs) +
      tag("div", { class: "meta" }, meta + (row.simbad ? tag("span", { class: "simbad" }, ` · SIMBAD ${esc(row.simbad)}`) : "")) +
      (others.length ? line(`others${conflict(row) ? " conflict" : ""}`, othersText(row)) : "") +
      (row.twins.length ? line("twins", `same star, overplotted: ${row.twins.map(twinName).join("; ")}`,
        "the same star's other spectra, overplotted in teal, scaled to this continuum") : "") +
      (row.neighbours.length ? line("neighbours", `⚠ other source within the fibre: ${row.neighbours
        .map((x) => `${x.designation || x.spectrum_id} at ${x.separation_arcsec}″`).join(", ")}`,
      "other sources within a fibre's reach: their light may be mixed in") : "") +
      (row.history.length ? line("history", `earlier verdicts on this star: ${row.history
        .map((x) => `${x.label} (${x.user || "anonymous"}, ${x.campaign}${x.iteration !== null ? ` #${x.iteration}` : ""})`).join("; ")}`) : "") +
      tag("div", { class: "actions" }, buttons +
        tag("button", { type: "button", class: "samp", "data-action": "samp", disabled: !sampOn(),
          title: "send the spectrum to SPLAT-VO and point Aladin at it (s)" }, "SAMP →") +
        tag("button", { type: "button", "data-action": "zoom", "aria-label": `zoom on ${name} (z)` }, "zoom") + link) +
      (window.AlvoNotes ? AlvoNotes.html(row, { esc, tag, name }) : "")));
  }

  function card(row) {
    const holder = document.createElement("template");
    holder.innerHTML = cardHtml(row);
    return holder.content.firstChild;
  }

  /** Clicks on a card: its buttons, or the card itself (which makes it the current row). */
  function onRowsClick(event) {
    const node = event.target.closest("article.row");
    const row = node && state.byId.get(Number(node.dataset.id));
    if (!row) return;
    select(state.view.indexOf(row.index));
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.verdict) label(button.dataset.verdict);
    else if (button.dataset.action === "zoom") zoom(row);
    else if (button.dataset.action === "similar") moreLikeThis(row.pubdid);
    else if (button.dataset.action === "samp") { sendSpectrum(row); sendPosition(row); }
  }

  /** The plot in words, for screen readers: what an expert reads off it first. */
  function describePlot(row) {
    const parts = [`Spectrum of ${row.designation || row.pubdid} around H-alpha`];
    state.decode(row);
    if (row.fluxData.length) {
      // from EW(Hα) and its error, not from the highest pixel: noise is no peak
      parts.push(AlvoQuality.describeHalpha(row.spectrum));
      const marks = AlvoQuality.describeDefects(row.spectrum);
      if (marks) parts.push(marks);
    } else {
      parts.push(`no native spectrum (${row.spectrum.error || "missing"})`);
    }
    parts.push(`predicted ${row.predicted} with p ${fmt(Math.max(...row.p))}`);
    if (row.twins.length) parts.push(`${row.twins.length} other spectra of the star overplotted`);
    return `${parts.join("; ")}.`;
  }

  function short(name) {
    return { "single-peak": "SP", "double-peak": "DP", absorption: "AB" }[name] || name;
  }

  function plotData(row, exemplars) {
    state.decode(row);
    const shown = AlvoQuality.shown(row, row.fluxData, row.sigmaData); // smoothing, key b
    return {
      wavelength: row.wavelengthData,
      flux: shown.flux,
      sigma: shown.sigma,
      defects: row.spectrum.defects,
      adapted: row.adaptedData,
      grid: state.grid,
      error: row.spectrum.error,
      unit: row.flux_unit,
      overview: row.overviewData,
      twins: row.twinData,
      lines: state.doc.lines,
      exemplars: exemplars ? state.exemplarData : null,
    };
  }

  /*
   * Plots on screen are drawn at once; the others when they come near the viewport
   * (IntersectionObserver) or when the browser is idle, whichever is first: the page
   * is usable as soon as the first screen is drawn (canvas drawing is the cost here).
   */
  const drawing = { version: 0, pending: [], observer: null };

  function drawCard(node) {
    if (Number(node.dataset.drawn) === drawing.version) return;
    node.dataset.drawn = drawing.version;
    const canvas = $(".plot", node);
    const row = state.byId.get(Number(node.dataset.id));
    AlvoPlot.spectrum(canvas, plotData(row, state.exemplars), state.wide ? WIDE : NARROW,
      { size: drawing.size || [canvas.clientWidth, canvas.clientHeight] });
    row.described = row.described || describePlot(row); // the words, once, when first drawn
    canvas.setAttribute("aria-label", row.described);
  }

  function drawAll() {
    drawing.version += 1;
    if (drawing.observer) drawing.observer.disconnect();
    const nodes = Array.from($("#rows").querySelectorAll("article.row"));
    if (!nodes.length) return;
    const first = $(".plot", nodes[0]);
    drawing.size = [first.clientWidth, first.clientHeight]; // every small plot has one CSS size
    const boxes = nodes.map((node) => node.getBoundingClientRect()); // one layout for all
    const later = [];
    nodes.forEach((node, i) => {
      if (boxes[i].bottom >= 0 && boxes[i].top <= window.innerHeight) drawCard(node);
      else later.push(node);
    });
    drawing.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) drawCard(entry.target);
    }, { rootMargin: "800px 0px" });
    later.forEach((node) => drawing.observer.observe(node));
    drawing.pending = later;
    const version = drawing.version;
    const idle = window.requestIdleCallback || ((fn) => setTimeout(() => fn({ timeRemaining: () => 8 }), 16));
    const work = (deadline) => {
      if (version !== drawing.version) return;
      while (drawing.pending.length && deadline.timeRemaining() > 2) drawCard(drawing.pending.shift());
      if (drawing.pending.length) idle(work);
      else state.allDrawnMs = performance.now();
    };
    idle(work);
  }

  function updateCount() {
    const queried = state.rows.filter((r) => r.role !== "candidate");
    const batch = queried.length ? queried : state.rows; // the candidates view has only those
    const done = batch.filter((r) => AlvoSurprises.judged(r, state.filter)).length;
    $("#count").textContent = state.rows.length
      ? `${done} / ${batch.length} labelled${done === batch.length && batch.length ? " ✓" : ""}` : "";
    const pending = state.queue.length;
    const sync = $("#sync");
    sync.textContent = pending ? `${pending} not saved yet${state.lastError ? ` (${state.lastError})` : ""}` : "all saved";
    sync.className = `sync ${pending ? "pending" : "saved"}`;
  }

  function rowAt(position) {
    return state.rows[state.view[position]];
  }

  /**
   * Make a row the current one. One cursor for keys, Tab and the mouse: the batch is
   * one Tab stop whose active descendant is the current row (moving DOM focus from
   * card to card costs a style pass of the whole page per key), and focus landing
   * inside a card (Tab to its buttons, a click) makes that card current.
   */
  function select(position, scroll = true) {
    if (position < 0 || position >= state.view.length) return;
    const old = $("#rows article.current");
    if (old) {
      old.classList.remove("current");
      old.removeAttribute("aria-current");
    }
    state.cursor = position;
    const id = `row-${rowAt(position).id}`;
    const node = document.getElementById(id);
    if (node) {
      node.classList.add("current");
      node.setAttribute("aria-current", "true");
      $("#rows").setAttribute("aria-activedescendant", id);
      if (scroll) node.scrollIntoView({ block: "nearest" });
    }
    if (sky) sky.show(rowAt(position));
  }

  /**
   * After a key press only the verdict changes: touch just its badge and buttons
   * (rebuilding the card would lay out the grid and redraw the plot, per key).
   */
  function showVerdict(row) {
    const node = document.getElementById(`row-${row.id}`);
    if (!node) return;
    const badge = $(".verdict", node);
    badge.className = `verdict ${row.mine || "none"}`;
    badge.textContent = row.mine || "not labelled";
    AlvoSurprises.show(node, row);
    for (const button of node.querySelectorAll(".vbtn:not(.rel)")) {
      const chosen = button.classList.contains(row.mine);
      button.classList.toggle("chosen", chosen);
      button.setAttribute("aria-pressed", chosen ? "true" : "false");
    }
    const others = $(".others", node);
    if (others) {
      others.classList.toggle("conflict", conflict(row));
      others.textContent = othersText(row);
    }
  }

  /** Other oracles' verdicts on the row, and whether they disagree with each other or with mine. */
  function othersText(row) {
    const others = Object.entries(row.labels || {}).filter(([user]) => user !== state.doc.user);
    return `${conflict(row) ? "⚠ conflict: " : "also: "}${others.map(([user, v]) => `${user || "anonymous"} ${v}`).join(", ")}`;
  }

  function refreshCard(row) {
    const node = document.getElementById(`row-${row.id}`);
    if (!node) return;
    const fresh = card(row);
    node.replaceWith(fresh);
    drawCard(fresh);
  }

  // --- labelling ------------------------------------------------------------------------------------
  function label(verdict) {
    const row = rowAt(state.cursor);
    if (!row) return;
    const field = AlvoSurprises.field(state.doc, verdict); // interesting/boring: kept apart
    state.undo.push({ id: row.id, previous: row[field] || null, position: state.cursor, field });
    saveUndo();
    row[field] = verdict;
    enqueue({ kind: "label", spectrum_id: row.id, label: verdict, iteration: state.doc.iteration,
      previous: state.undo[state.undo.length - 1].previous, field,
      ...(field === "mine" ? { comment: row.comment || "", flag: !!row.flag } : {}) });
    showVerdict(row);
    hook("labelled", row);
    advance();
    updateCount();
  }

  /**
   * What the batch is, in plain words: how many rows the network is unsure of, how many
   * are the random precision sample or asked-for padding; when it has no uncertain
   * candidate left, what the oracle can do (a random absorption sample, spot-check, or
   * stop: the campaign's stopping rule with its evidence, when the service gives one).
   */
  const ABSORPTION_SAMPLE = 20;
  function describeBatch() {
    const section = $("#composition");
    const doc = state.doc;
    if (!doc || doc.iteration === null || doc.iteration === undefined || SERVER_VIEWS[state.filter]) {
      section.hidden = true;
      return;
    }
    const count = (role) => state.rows.filter((r) => r.role === role).length;
    const [query, sample, padding] = ["query", "precision-sample", "padding"].map(count);
    const parts = [`${query} the network is unsure of (query)`];
    if (sample) parts.push(`${sample} drawn at random among its predicted emission (precision sample)`);
    if (padding) parts.push(`${padding} drawn at random among its predicted absorption (asked for)`);
    const children = [h("p", {}, h("strong", {}, `Iteration ${doc.iteration}: `), `${parts.join(", ")}.`)];
    if (query < doc.batch_size) {
      const none = query === 0;
      children.push(h("p", { class: "converged", id: "converged" },
        none ? "The network has no uncertain candidates left: " : `The network has only ${query} uncertain candidates left (a batch holds ${doc.batch_size}): `,
        `it predicts ${doc.n_candidates ?? "–"} spectra of the pool as emission, and every other one is ` +
        "labelled or in the precision sample. What you can do:"));
      children.push(h("ul", { class: "choices" },
        h("li", {}, h("button", { type: "button", id: "absorption-sample" },
          `Label ${ABSORPTION_SAMPLE} spectra it calls absorption`),
          ` — the next iteration adds a random sample of ${ABSORPTION_SAMPLE} of them; an emission star among them is one the network misses.`),
        h("li", {}, h("button", { type: "button", id: "spot-check" }, "Spot-check the candidates"),
          " — the spectra it predicts as emission, most uncertain first."),
        h("li", { id: "stop-choice" }, h("strong", {}, "Stop"),
          state.stopping ? "" : " — if the labels so far satisfy you: the candidates are in the exports and over TAP.")));
    }
    if (state.stopping) children.push(stoppingRule(state.stopping));
    section.replaceChildren(...children);
    section.hidden = false;
  }

  /** An evidence value in words: numbers to 3 digits, lists and objects spelled out with
   * spaces (so a phone wraps them), a missing value as a dash. */
  function evidenceText(v) {
    if (v === null || v === undefined) return "\u2013";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(3);
    if (Array.isArray(v)) return v.map(evidenceText).join(", ");
    if (typeof v === "object") {
      return Object.entries(v).map(([k, x]) => `${k.replace(/_/g, " ")} ${evidenceText(x)}`).join(", ");
    }
    return String(v);
  }

  /** The campaign's stopping rule as the service gives it (GET campaigns/{name}: "stopping"). */
  function stoppingRule(stopping) {
    const evidence = Object.entries(stopping.evidence || {})
      .map(([k, v]) => h("li", {}, `${k.replace(/_/g, " ")}: ${evidenceText(v)}`));
    return h("div", { class: `stopping ${stopping.stop ? "stop" : "go-on"}`, id: "stopping" },
      h("p", {}, h("strong", {}, stopping.stop ? "Stopping rule: stop. " : "Stopping rule: go on. "), stopping.reason || ""),
      evidence.length ? h("ul", { class: "evidence" }, ...evidence) : null);
  }

  async function loadStopping() {
    try {
      const response = await fetch(api, { cache: "no-store" });
      const summary = response.ok ? await response.json() : {};
      state.stopping = summary && typeof summary.stopping === "object" && summary.stopping ? summary.stopping : null;
    } catch {
      state.stopping = null;
    }
    describeBatch();
  }

  $("#composition").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.id === "absorption-sample") {
      $(".advanced [name=PADDING]").value = String(ABSORPTION_SAMPLE);
      $("#iterate").click();
    } else if (button.id === "spot-check") {
      $("#filter").value = "candidates";
      $("#filter").dispatchEvent(new Event("change"));
    }
  });

  /** Position in the view of the first row without my verdict (0 when all have one). */
  function firstUnlabelled() {
    state.view = filtered();
    const position = state.view.findIndex((i) => !AlvoSurprises.judged(state.rows[i], state.filter));
    return Math.max(0, position);
  }

  function advance() {
    const n = state.view.length;
    for (let step = 1; step <= n; step++) {
      const position = (state.cursor + step) % n;
      if (!AlvoSurprises.judged(rowAt(position), state.filter)) {
        select(position);
        return;
      }
    }
    showNotice("Every row of this view is labelled: start the next iteration (button above) when you are ready.");
  }

  function undo() {
    const last = state.undo.pop();
    if (!last) return;
    saveUndo();
    const row = state.byId.get(last.id);
    const field = last.field || "mine";
    row[field] = last.previous;
    const tail = state.queue[state.queue.length - 1];
    if (tail && tail.kind === "label" && !tail.note && tail.spectrum_id === last.id && !tail.sent) {
      state.queue.pop(); // never reached the service: just forget it
      saveQueue();
    } else {
      enqueue({ kind: "undo", spectrum_id: last.id, previous: last.previous, field });
    }
    showVerdict(row);
    hook("undone", row);
    const position = state.view.indexOf(row.index);
    if (position >= 0) select(position);
    updateCount();
  }

  function enqueue(op) {
    state.queue.push(op);
    saveQueue();
    flush();
  }

  /** Send queued operations in order; keep them (in localStorage) until acknowledged. */
  async function flush() {
    if (state.sending) return;
    state.sending = true;
    try {
      while (state.queue.length) {
        const head = state.queue[0];
        let count = 1;
        if (head.kind === "label") {
          while (count < state.queue.length && count < 200 && state.queue[count].kind === "label") count++;
        }
        const ops = state.queue.slice(0, count);
        ops.forEach((op) => { op.sent = true; });
        saveQueue();
        const reply = head.kind === "label"
          ? await post(`${api}/labels`, { source: "page", labels: ops.map((op) => ({
            spectrum_id: op.spectrum_id, label: op.label, iteration: op.iteration,
            ...(op.comment !== undefined ? { comment: op.comment, flag: op.flag } : {}) })) },
          state.postTimeoutMs)
          : await post(`${api}/labels/undo`, { spectrum_id: head.spectrum_id,
            relevance: head.field === "relevance" });
        state.queue.splice(0, count);
        saveQueue();
        if (reply.refused) refused(ops, reply.error);
        else if (head.kind === "label" && reply.unknown && reply.unknown.length) {
          const unknown = new Set(reply.unknown.map(String));
          refused(ops.filter((op) => unknown.has(String(op.spectrum_id))), "the service does not know this spectrum");
        }
        state.lastError = "";
        for (const c of reply.conflicts || []) {
          const row = state.byId.get(c.spectrum_id);
          if (!row) continue;
          row.labels = c.verdicts;
          refreshCard(row);
          showNotice(`Conflict on ${row.designation || row.pubdid}: ${Object.entries(c.verdicts)
            .map(([u, v]) => `${u || "anonymous"} says ${v}`).join(", ")}`, true);
        }
      }
    } catch (error) {
      state.lastError = String(error.message || error);
      setTimeout(flush, 3000);
    } finally {
      state.sending = false;
      updateCount();
    }
  }

  /** POST JSON; with ``timeoutMs``, a request unanswered by then fails (flush sends it again). */
  async function post(url, payload, timeoutMs = 0) {
    const controller = new AbortController();
    const timer = timeoutMs ? setTimeout(() => controller.abort(), timeoutMs) : null;
    let response;
    let reply;
    try {
      response = await fetch(url, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
        signal: controller.signal,
      });
      reply = await response.json().catch(() => ({}));
    } catch (error) {
      if (controller.signal.aborted) throw new Error(`no answer in ${Math.round(timeoutMs / 1000)} s`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      if (response.status >= 400 && response.status < 500) {
        // the service refused it for good (unknown spectrum, bad verdict): drop it, say why
        return { ...reply, refused: true, error: reply.error || `HTTP ${response.status}` };
      }
      throw new Error(`HTTP ${response.status}`);
    }
    return reply;
  }

  /** Verdicts the service refused for good: the rows show what is stored, not the key press. */
  function refused(ops, why) {
    const names = [];
    for (const op of ops) {
      const row = state.byId.get(op.spectrum_id);
      if (!row) continue;
      const field = op.field || "mine";
      if (op.kind === "label" && !op.note && row[field] === op.label) row[field] = op.previous || null;
      state.undo = state.undo.filter((u) => u.id !== op.spectrum_id);
      names.push(row.designation || row.pubdid);
      refreshCard(row);
    }
    saveUndo();
    updateCount();
    showNotice(`Not saved (refused by the service): ${names.join(", ") || "the last change"}: ${why}`, true);
  }

  /**
   * A message in the sticky header, where it is seen however far down the batch one is.
   * Warnings and errors stay until dismissed (× or Esc); news goes after 6 s.
   */
  let noticeTimer = null;
  function showNotice(text, warn = false) {
    const node = $("#notice");
    $("#notice-text").textContent = text;
    node.className = `notice${warn ? " warn" : ""}`;
    node.setAttribute("role", warn ? "alert" : "status");
    node.hidden = false;
    clearTimeout(noticeTimer);
    if (!warn) noticeTimer = setTimeout(() => { node.hidden = true; }, 6000);
  }

  function dismissNotice() {
    $("#notice").hidden = true;
  }
  $("#notice-close").addEventListener("click", dismissNotice);

  // --- zoom ------------------------------------------------------------------------------------------
  const zoomState = { row: null, view: { ...NARROW }, exemplars: true, drag: null };

  function zoom(row) {
    state.decode(row);
    zoomState.row = row;
    zoomState.view = { ...(state.wide ? WIDE : NARROW) };
    $("#zoom-title").textContent = `${row.designation || row.pubdid} · predicted ${row.predicted}` +
      ` · ${row.mine ? `labelled ${row.mine}` : "not labelled"}`;
    const legend = $("#zoom-legend");
    legend.replaceChildren(h("i", { class: "sw native" }), " native flux ",
      h("i", { class: "sw band" }), " ±1σ ",
      h("i", { class: "sw adapted" }), " adapted vector (what the network saw) ",
      ...(row.twinData.length ? [h("i", { class: "sw twin" }), ` same star: ${row.twinData.map((t) => t.name).join("; ")} `] : []),
      ...Object.entries(state.doc.exemplars).flatMap(([name, ex]) => [
        h("i", { class: "sw dashed", style: `border-color:${AlvoPlot.COLORS[name]}` }),
        ` mean ${name} (n=${ex.n}) `]));
    const dialog = $("#zoom");
    if (!dialog.open) dialog.showModal();
    drawZoom();
    hook("zoomed", row);
  }

  function drawZoom() {
    if (!zoomState.row) return;
    AlvoPlot.spectrum($("#zoom-canvas"), plotData(zoomState.row, zoomState.exemplars), zoomState.view, { big: true });
  }

  const zoomCanvas = $("#zoom-canvas");
  zoomCanvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const rect = zoomCanvas.getBoundingClientRect();
    const f = (event.clientX - rect.left) / rect.width;
    const v = zoomState.view;
    const at = v.lo + f * (v.hi - v.lo);
    const scale = event.deltaY > 0 ? 1.25 : 0.8;
    const width = Math.min(400, Math.max(5, (v.hi - v.lo) * scale));
    zoomState.view = { lo: at - f * width, hi: at + (1 - f) * width };
    drawZoom();
  }, { passive: false });
  zoomCanvas.addEventListener("pointerdown", (event) => {
    zoomState.drag = { x: event.clientX, view: { ...zoomState.view } };
    zoomCanvas.setPointerCapture(event.pointerId);
  });
  zoomCanvas.addEventListener("pointermove", (event) => {
    if (!zoomState.drag) return;
    const width = zoomState.drag.view.hi - zoomState.drag.view.lo;
    const shift = -((event.clientX - zoomState.drag.x) / zoomCanvas.clientWidth) * width;
    zoomState.view = { lo: zoomState.drag.view.lo + shift, hi: zoomState.drag.view.hi + shift };
    drawZoom();
  });
  zoomCanvas.addEventListener("pointerup", () => { zoomState.drag = null; });
  $("#zoom-close").addEventListener("click", () => $("#zoom").close());

  // --- keyboard ----------------------------------------------------------------------------------
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.closest && target.closest("input, select, textarea")) {
      if (event.key === "Escape" && !$("#zoom").open) { // leave the field, back to the rows
        event.preventDefault();
        $("#rows").focus({ preventScroll: true });
        select(state.cursor);
      }
      return;
    }
    if ((event.key === "Enter" || event.key === " ") && target.closest && target.closest("button, a, summary")) return;
    if (hook("key", event)) { event.preventDefault(); return; }
    const dialog = $("#zoom");
    if (dialog.open) {
      if (event.key === "r") { zoomState.view = { ...NARROW }; drawZoom(); }
      if (event.key === "e") { zoomState.exemplars = !zoomState.exemplars; drawZoom(); }
      if (event.key === "z") dialog.close();
      if (state.doc.keys[event.key]) { dialog.close(); label(state.doc.keys[event.key]); }
      else if ((state.doc.relevance_keys || {})[event.key]) { dialog.close(); label(state.doc.relevance_keys[event.key]); }
      return;
    }
    if (event.altKey || event.metaKey) return;
    if (event.ctrlKey) {
      if (event.key === "z") { event.preventDefault(); undo(); }
      return;
    }
    const verdict = state.doc && (state.doc.keys[event.key] || (state.doc.relevance_keys || {})[event.key]);
    if (verdict) {
      event.preventDefault();
      label(verdict);
      return;
    }
    switch (event.key) {
      case "Escape": dismissNotice(); break;
      case "/": $("#search").focus(); break;
      case "s": sampHandOff(); break;
      case "u": undo(); break;
      case "m": if (rowAt(state.cursor)) moreLikeThis(rowAt(state.cursor).pubdid); break;
      case "j": case "ArrowDown": select(state.cursor + 1); break;
      case "k": case "ArrowUp": select(state.cursor - 1); break;
      case "z": case "Enter": if (rowAt(state.cursor)) zoom(rowAt(state.cursor)); break;
      case "e": state.exemplars = !state.exemplars; drawAll(); break;
      case "w": state.wide = !state.wide; drawAll(); break;
      case "o": AlvoQuality.cycle(); break;
      default: return;
    }
    event.preventDefault();
  });

  $("#rows").addEventListener("click", onRowsClick);
  $("#rows").addEventListener("dblclick", (event) => {
    const node = event.target.closest("canvas.plot") && event.target.closest("article.row");
    if (node) zoom(state.byId.get(Number(node.dataset.id)));
  });
  $("#rows").addEventListener("focusin", (event) => {
    const node = event.target.closest("article.row");
    const row = node && state.byId.get(Number(node.dataset.id));
    if (row && state.view.indexOf(row.index) !== state.cursor) select(state.view.indexOf(row.index), false);
  });

  // --- controls ---------------------------------------------------------------------------------
  $("#filter").value = state.filter;
  $("#filter").addEventListener("change", async (event) => {
    const before = state.filter;
    state.filter = event.target.value;
    state.cursor = 0;
    if (SERVER_VIEWS[before] !== SERVER_VIEWS[state.filter]) await load($("#iteration").value);
    else render();
    event.target.blur();
  });
  $("#search").addEventListener("input", () => { state.cursor = 0; render(); });
  $("#iteration").addEventListener("change", (event) => {
    const url = new URL(location.href);
    url.searchParams.set("iteration", event.target.value);
    history.replaceState(null, "", url);
    state.undo = [];
    load(event.target.value);
    event.target.blur();
  });
  $("#import").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const response = await fetch(`${api}/labels`, { method: "POST", body: form });
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) { showNotice(`Import failed: ${reply.error || response.status}`, true); return; }
    showNotice(`Imported ${reply.stored} labels${reply.unknown.length ? `, ${reply.unknown.length} unknown spectra` : ""}` +
      `${reply.conflicts.length ? `, ${reply.conflicts.length} conflicts` : ""}.`);
    await load($("#iteration").value);
  });

  // --- next iteration (UWS /iterate) --------------------------------------------------------------
  $("#iterate").addEventListener("click", async () => {
    if (state.queue.length) {
      showNotice("Some labels are not saved yet: they are sent first.");
      while (state.sending) await new Promise((resolve) => setTimeout(resolve, 100)); // a send in flight
      await flush();
      if (state.queue.length) {
        showNotice(`${state.queue.length} labels are not saved yet (the service does not answer): ` +
          "they wait in this browser; start the iteration once the header says all saved.", true);
        return;
      }
    }
    const form = new URLSearchParams({ CAMPAIGN: campaign });
    for (const field of document.querySelectorAll(".advanced [name]")) {
      if (field.value) form.set(field.name, field.value);
    }
    let url;
    try {
      url = await AlvoJobs.start(`${root}iterate`, form);
    } catch (error) {
      // ITERATION_RUNNING: one started elsewhere meanwhile; follow it rather than fail
      if (error.message.includes("ITERATION_RUNNING") && await followRunning()) return;
      showNotice(`The iteration could not start: ${error.message}`, true);
      return;
    }
    state.job = { url };
    localStorage.setItem(`${storeKey}:job`, JSON.stringify(state.job));
    follow(state.job.url);
  });

  /** An iterate job of this campaign started elsewhere (home page, alvo submit, another tab):
   * follow it, so the page shows its progress and offers no second start. */
  async function followRunning() {
    const [url] = await AlvoJobs.running(`${root}iterate`, "CAMPAIGN", campaign).catch(() => []);
    if (!url || state.followed === url) return false;
    state.job = { url };
    localStorage.setItem(`${storeKey}:job`, JSON.stringify(state.job));
    follow(url);
    return true;
  }

  /** Follow the iterate job (UWS WAIT and jobInfo), with the time so far and an estimate. */
  async function follow(url) {
    const bar = $("#job-progress");
    const text = $("#job-state");
    state.followed = url;
    $("#iterate").disabled = true;
    bar.hidden = false;
    if (!state.rows.length) $("#rows .empty")?.replaceChildren("An iteration is running: its batch appears here when it completes.");
    const final = await AlvoJobs.follow(url, (status) => {
      state.jobStatus = status;
      if (status.fraction === null) bar.removeAttribute("value"); // indeterminate
      else bar.value = status.fraction;
      text.textContent = AlvoJobs.describe(status);
      text.dataset.phase = status.phase;
    });
    localStorage.removeItem(`${storeKey}:job`);
    state.job = null;
    bar.hidden = final.phase !== "COMPLETED";
    $("#iterate").disabled = false;
    if (final.phase === "COMPLETED") {
      state.undo = [];
      const here = new URL(location.href);
      here.searchParams.delete("iteration");
      history.replaceState(null, "", here);
      await load(null);
      text.textContent = `${AlvoJobs.describe(final)}: iteration ${state.doc.iteration} is loaded`;
      showNotice(`Iteration ${state.doc.iteration} is ready: ${state.rows.length} spectra to label.`);
    } else {
      showNotice(`The iteration ended ${final.phase}: ${final.error || "see the job"} (${url})`, true);
    }
  }

  // --- SAMP ----------------------------------------------------------------------------------------
  const sampUrl = query.get("samp") || "http://localhost:21012/";

  function sampOn() {
    return !!(state.samp && state.samp.connected);
  }

  function batchTableUrl() {
    const url = new URL(`${api}/candidates`, location.href);
    url.searchParams.set("ROLE", "query");
    url.searchParams.set("ITERATION", String(state.doc.iteration));
    return url.href;
  }

  function sampChanged() {
    const on = sampOn();
    $("#samp-connect").textContent = on ? "Disconnect SAMP" : "Connect SAMP";
    $("#samp-table").disabled = !on;
    $("#samp-moc").disabled = !on;
    for (const button of document.querySelectorAll("button.samp")) button.disabled = !on;
    $("#samp-status").textContent = on ? "connected to the SAMP hub" : "";
  }

  const connect = async () => {
    if (sampOn()) { await state.samp.unregister(); return; }
    const client = new AlvoSamp.Client(sampUrl);
    client.onchange = sampChanged;
    state.samp = client;
    $("#samp-status").textContent = "asking the hub (accept alvo in its dialog)…";
    try {
      await client.register("alvo-oracle", {
        "samp.description.text": `alvo labelling page of campaign ${campaign}`,
        "samp.documentation.url": new URL(`${root}oracle`, location.href).href,
      }, {
        "table.highlight.row": (params) => highlight(params),
      });
    } catch (error) {
      state.samp = null;
      $("#samp-status").textContent = `no SAMP hub (${error.message || error}): start TOPCAT or Aladin`;
    }
  };
  $("#samp-connect").addEventListener("click", connect);

  /** The s key: the current spectrum to SPLAT-VO and its position to Aladin (connects first). */
  async function sampHandOff() {
    const row = rowAt(state.cursor);
    if (!row) return;
    if (!sampOn()) {
      await connect();
      if (!sampOn()) return;
    }
    await sendSpectrum(row);
    await sendPosition(row);
    if (sky) await sampCallAll("script.aladin.send", { script: sky.aladinScript(row) }, "zoom");
  }

  /** The pool's footprint: Aladin loads it by script (it takes no coverage.load.moc.fits);
   * other tools that take MOCs get coverage.load.moc.fits. */
  $("#samp-moc").addEventListener("click", async () => {
    const url = new URL(`${api}/moc`, location.href).href;
    await sampCallAll("script.aladin.send", { script: `load ${url}` }, "footprint");
    await sampCallAll("coverage.load.moc.fits", { url, name: `${campaign} pool footprint` }, "footprint");
  });

  /** A message sent as a call to every subscriber; each reply is shown (and kept in
   * alvo.sampReplies with ``what`` it was for): "Aladin: coord.pointAt.sky done". */
  async function sampCallAll(mtype, params, what = mtype) {
    try {
      const to = await state.samp.callAll(mtype, params, (name, response) => {
        const status = response["samp.status"];
        (state.sampReplies = state.sampReplies || []).push({ name, mtype, what, status });
        const why = (response["samp.error"] || {})["samp.errortxt"] || status;
        $("#samp-status").textContent = `${name}: ${mtype} ${status === "samp.ok" ? "done" : `refused (${why})`}`;
      });
      $("#samp-status").textContent = to.length ? `sent ${mtype}` : `nothing takes ${mtype}: start Aladin`;
    } catch (error) {
      $("#samp-status").textContent = `SAMP: ${error.message || error}`;
    }
  }

  $("#samp-table").addEventListener("click", () => sampSend("table.load.votable", {
    url: batchTableUrl(), "table-id": batchTableUrl(),
    name: `${campaign} iteration ${state.doc.iteration} query batch`,
  }));

  function sendSpectrum(row) {
    return sampSend("spectrum.load.ssa-generic", {
      url: row.access_url,
      meta: { "ssa:Access.Reference": row.access_url, "ssa:Access.Format": "application/fits",
        "ssa:DataID.Title": row.designation || row.pubdid, "ssa:Curation.PublisherDID": row.pubdid },
      "spectrum-id": row.pubdid,
      name: row.designation || row.pubdid,
    });
  }

  /** A call, not a notification: Aladin's reply shows (it moves there). */
  function sendPosition(row) {
    return sampCallAll("coord.pointAt.sky", { ra: String(row.ra), dec: String(row.dec) });
  }

  async function sampSend(mtype, params) {
    try {
      await state.samp.notifyAll(mtype, params);
      $("#samp-status").textContent = `sent ${mtype}`;
    } catch (error) {
      $("#samp-status").textContent = `SAMP: ${error.message || error}`;
    }
  }

  /** table.highlight.row from TOPCAT: rows of the batch VOTable are the page's rows, in order. */
  function highlight(params) {
    state.sampSeen = (state.sampSeen || 0) + 1;
    const ours = batchTableUrl();
    if (params["table-id"] !== ours && params.url !== ours) return;
    const row = state.rows[Number(params.row)];
    if (!row) return;
    if (!state.view.includes(row.index)) { state.filter = "all"; $("#filter").value = "all"; render(); }
    select(state.view.indexOf(row.index));
    const node = document.getElementById(`row-${row.id}`);
    node.classList.add("flash");
    setTimeout(() => node.classList.remove("flash"), 1500);
  }

  // --- start -------------------------------------------------------------------------------------
  window.addEventListener("resize", () => { drawAll(); drawZoom(); });
  // what the modules may use of this page
  hook("init", { state, api, campaign, root, h, $, rowAt, select, render, enqueue, showNotice, storeKey, zoom,
    zoomedRow: () => zoomState.row, focusRows: () => $("#rows").focus({ preventScroll: true }) });
  load(query.get("iteration")).then(() => {
    flush();
    if (state.job) follow(state.job.url);
    else followRunning();
    loadStopping();
    window.alvoReady = {
      sinceNavigationMs: performance.now(), scriptMs: performance.now() - started, ...state.timing,
    };
    body.dataset.ready = "1";
  });
})();
