/* alvo oracle: surprises and "more like this" on the labelling page (issue 22).
 *
 * The labelling page (label.js) calls these through small hooks:
 *  - relevance answers, keys i (interesting) and b (boring): a label kind of their own,
 *    kept apart from the class verdicts (the service stores them in its relevance table
 *    and never trains on them); they re-rank the next iteration's surprises;
 *  - the "surprises" view: the iteration's top-ranked surprises (ROLE=surprise), where a
 *    row counts as done once it has a relevance answer;
 *  - key m: the current spectrum's nearest neighbours in the network's embedding
 *    (the "more like this" index behind /similar) join the page as an extra batch, each
 *    row with role "similar", labelled like any other row. The spectra asked about are
 *    remembered per iteration, so a reload shows the same extra batches.
 */
"use strict";

window.AlvoSurprises = (() => {
  const NEIGHBOURS = 10;

  /** Whether a verdict is a relevance answer (interesting/boring), not a class verdict. */
  const isRelevance = (doc, verdict) => !!doc && Object.values(doc.relevance_keys || {}).includes(verdict);

  /** The row field a verdict is kept in on the page. */
  const field = (doc, verdict) => (isRelevance(doc, verdict) ? "relevance" : "mine");

  /** Done, as the view counts it: a relevance answer in the surprises view, else a verdict. */
  const judged = (row, filter) => (filter === "surprises" ? !!row.relevance : !!row.mine);

  /** Whether a card offers the relevance buttons (surprises, neighbours, or answered). */
  const offersRelevance = (row) => row.role === "surprise" || row.role === "similar" || !!row.relevance;

  /** HTML of a card's relevance buttons and of its relevance badge (tag, esc: label.js's). */
  function buttons(doc, row, tag, esc) {
    if (!offersRelevance(row)) return "";
    return Object.entries(doc.relevance_keys || {}).map(([key, verdict]) => tag("button", {
      type: "button", class: `vbtn rel ${verdict}${row.relevance === verdict ? " chosen" : ""}`,
      "data-verdict": verdict, "aria-pressed": row.relevance === verdict ? "true" : "false",
      title: `${verdict}: re-ranks the next iteration's surprises; never trained on (key ${key})`,
    }, `<kbd>${key}</kbd> ${esc(verdict)}`)).join("") +
      tag("button", { type: "button", "data-action": "similar",
        title: `queue its ${NEIGHBOURS} nearest spectra in the network's embedding (m)` }, "<kbd>m</kbd> more like this");
  }

  function badge(row, tag, esc) {
    const text = row.relevance || (row.role === "surprise" ? "no answer" : "");
    return text ? tag("span", { class: `relevance ${row.relevance || "none"}` }, esc(text)) : "";
  }

  /** Keep a card's relevance badge and buttons in step with the row. */
  function show(node, row) {
    const badgeNode = node.querySelector(".relevance");
    if (badgeNode) {
      badgeNode.className = `relevance ${row.relevance || "none"}`;
      badgeNode.textContent = row.relevance || "no answer";
    }
    for (const button of node.querySelectorAll(".vbtn.rel")) {
      const chosen = button.dataset.verdict === row.relevance;
      button.classList.toggle("chosen", chosen);
      button.setAttribute("aria-pressed", chosen ? "true" : "false");
    }
  }

  // --- more like this (key m) -------------------------------------------------------------------
  const askedKey = (storeKey, iteration) => `${storeKey}:similar:${iteration}`;

  function asked(storeKey, iteration) {
    try {
      return JSON.parse(localStorage.getItem(askedKey(storeKey, iteration)) || "[]");
    } catch {
      return [];
    }
  }

  function remember(storeKey, iteration, like) {
    const list = asked(storeKey, iteration).filter((x) => x !== like);
    list.push(like);
    localStorage.setItem(askedKey(storeKey, iteration), JSON.stringify(list.slice(-50)));
  }

  /** The batch document of a spectrum's neighbours (rows with role "similar"). */
  async function neighbours(api, like, iteration) {
    const params = new URLSearchParams({ ROLE: "similar", OF: like, K: String(NEIGHBOURS) });
    if (iteration !== null && iteration !== undefined) params.set("ITERATION", iteration);
    const response = await fetch(`${api}/batch?${params}`, { cache: "no-store" });
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(reply.error || `HTTP ${response.status}`);
    return reply;
  }

  /**
   * Append a neighbours document's rows to the page's rows (those already on the page are
   * left where they are): their wavelength grids join the page's, so the indices the rows
   * carry are shifted. Returns the rows added.
   */
  function merge(state, doc, floats) {
    const offset = state.grids.length;
    const wideOffset = state.wideGrids.length;
    state.grids.push(...(doc.wavelengths || []).map(floats));
    state.wideGrids.push(...(doc.overview_wavelengths || []).map(floats));
    const shift = (spectrum, by) => {
      if (spectrum && spectrum.grid !== undefined && spectrum.grid !== null) spectrum.grid += by;
    };
    const added = [];
    for (const row of doc.rows) {
      if (state.byId.has(row.id)) continue;
      shift(row.spectrum, offset);
      shift(row.overview, wideOffset);
      for (const twin of row.twins || []) shift(twin.spectrum, offset);
      const fresh = { ...row, index: state.rows.length };
      state.rows.push(fresh);
      state.byId.set(fresh.id, fresh);
      added.push(fresh);
    }
    return added;
  }

  return { NEIGHBOURS, isRelevance, field, judged, buttons, badge, show, asked, remember, neighbours, merge };
})();
