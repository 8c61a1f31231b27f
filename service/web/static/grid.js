/* alvo oracle: the batch at a glance, Marz-style (docs/oracle-page.md, "Overview grid").
 *
 * One thumbnail per row of the batch: the 140-pixel vector the network saw, framed
 * by the row's role (query, precision sample, padding) and filled by its verdict
 * (flagged rows carry a ⚑). Open and close with g or the header's "grid" button; a click
 * or Enter on a thumbnail jumps to that row; arrows move between thumbnails.
 */
"use strict";

window.AlvoGrid = (() => {
  let page = null;
  let built = false; // the cells of the loaded batch exist (a verdict recolours its own)
  const ROLE = { query: "query", "precision-sample": "precision sample", padding: "padding", candidate: "candidate" };
  const W = 96;
  const H = 40;

  function init(p) {
    page = p;
    const { h, $ } = page;
    const spacer = $("header.bar .line .spacer");
    spacer.before(h("button", { type: "button", id: "grid-open", "aria-haspopup": "dialog",
      title: "every row of the batch at a glance (g)" }, "grid (g)"));
    $("#grid-open").addEventListener("click", () => open());
    document.body.append(h("dialog", { id: "grid", class: "grid-dialog", "aria-labelledby": "grid-title" },
      h("div", { class: "zoomhead" },
        h("h2", { id: "grid-title" }, "The batch at a glance"),
        h("span", { class: "legend grid-legend" },
          h("i", { class: "gk query" }), " query ", h("i", { class: "gk precision-sample" }), " precision sample ",
          h("i", { class: "gk padding" }), " padding ",
          h("span", { class: "muted" }, " · fill: verdict · ⚑ flagged · Enter or click: go to the row · g or Esc: close")),
        h("button", { type: "button", id: "grid-close" }, "Close")),
      h("div", { id: "grid-cells", class: "grid-cells", role: "list" })));
    $("#grid-close").addEventListener("click", () => $("#grid").close());
    $("#grid-cells").addEventListener("click", (event) => {
      const cell = event.target.closest("button.cell");
      if (cell) jump(Number(cell.dataset.index));
    });
    $("#grid-cells").addEventListener("keydown", move);
  }

  function rows() {
    const all = page.state.rows;
    const batch = all.filter((r) => r.role !== "candidate");
    return batch.length ? batch : all;
  }

  function cellLabel(row) {
    return `row ${row.index + 1}: ${row.designation || row.pubdid}, ${ROLE[row.role] || row.role}, ` +
      `predicted ${row.predicted}, ${row.mine ? `labelled ${row.mine}` : "not labelled"}${row.flag ? ", flagged" : ""}`;
  }

  function cell(row) {
    const { h } = page;
    return h("div", { role: "listitem" },
      h("button", { type: "button", class: `cell role-${row.role} verdict-${row.mine || "none"}${row.flag ? " flagged" : ""}`,
        "data-index": row.index, id: `cell-${row.id}`, "aria-label": cellLabel(row) },
      h("canvas", { width: W, height: H, "aria-hidden": "true" }),
      h("span", { class: "cap", "aria-hidden": "true" }, `${row.index + 1}${row.flag ? " ⚑" : ""}`)));
  }

  /** The network's 140-pixel vector as a polyline: a few microseconds per thumbnail. */
  function draw(canvas, row) {
    page.state.decode(row);
    const y = row.adaptedData;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, W, H);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of y) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!(hi > lo)) return;
    ctx.strokeStyle = "#111827";
    ctx.lineWidth = 1;
    ctx.beginPath();
    let pen = false;
    y.forEach((v, i) => {
      if (!Number.isFinite(v)) { pen = false; return; }
      const px = (i / (y.length - 1)) * (W - 4) + 2;
      const py = H - 3 - ((v - lo) / (hi - lo)) * (H - 6);
      if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      pen = true;
    });
    ctx.stroke();
  }

  function open() {
    const { $ } = page;
    const dialog = $("#grid");
    if (dialog.open) { dialog.close(); return; }
    if (!page.state.rows.length) { page.showNotice("No batch to show yet."); return; }
    if (!built) {
      const list = rows();
      const cells = list.map(cell);
      $("#grid-cells").replaceChildren(...cells);
      cells.forEach((node, i) => draw(node.querySelector("canvas"), list[i]));
      built = true;
    }
    dialog.showModal();
    const current = page.rowAt(page.state.cursor);
    const focus = (current && document.getElementById(`cell-${current.id}`)) || $("#grid-cells button");
    if (focus) focus.focus();
  }

  function jump(index) {
    const { state } = page;
    page.$("#grid").close();
    let position = state.view.indexOf(index);
    if (position < 0) { // filtered out: show every row
      state.filter = "all";
      page.$("#filter").value = "all";
      page.$("#search").value = "";
      page.render();
      position = state.view.indexOf(index);
    }
    page.focusRows();
    page.select(position);
  }

  /** Arrow keys move between thumbnails, row by row as they wrap. */
  function move(event) {
    const cells = Array.from(page.$("#grid-cells").querySelectorAll("button.cell"));
    const at = cells.indexOf(document.activeElement);
    if (at < 0) return;
    const top = cells[0].offsetTop;
    const perLine = Math.max(1, cells.findIndex((c) => c.offsetTop !== top) === -1
      ? cells.length : cells.findIndex((c) => c.offsetTop !== top));
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perLine, ArrowUp: -perLine, j: 1, k: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    event.stopPropagation();
    const next = cells[Math.min(cells.length - 1, Math.max(0, at + step))];
    next.focus();
  }

  /** A verdict or flag changed: recolour its thumbnail if the grid is open. */
  function labelled(row) {
    const node = document.getElementById(`cell-${row.id}`);
    if (!node) return;
    node.className = `cell role-${row.role} verdict-${row.mine || "none"}${row.flag ? " flagged" : ""}`;
    node.setAttribute("aria-label", cellLabel(row));
    node.querySelector(".cap").textContent = `${row.index + 1}${row.flag ? " ⚑" : ""}`;
  }

  function loaded() {
    built = false; // another batch (or the candidates view): cells made on the next open
    if (page.$("#grid").open) page.$("#grid").close();
  }

  function key(event) {
    const dialog = page.$("#grid");
    if (dialog.open) {
      if (event.key === "g" || event.key === "Escape") { dialog.close(); return true; }
      return event.key !== "Escape" && event.key !== "Tab"; // no labelling behind the grid
    }
    if (event.key !== "g" || event.ctrlKey || event.altKey || event.metaKey) return false;
    if (document.querySelector("dialog[open]")) return false;
    open();
    return true;
  }

  return { init, open, labelled, undone: labelled, loaded, key };
})();
