/* alvo oracle: a comment and a "needs a second look" flag per spectrum (docs/labelling.md).
 *
 * Both travel with the verdict: a label sent by a key carries the row's comment and
 * flag, and a note changed on a labelled row is sent as the same verdict with the new
 * note (the service writes it into that verdict's row, so undo still takes back the
 * verdict). On a row not labelled yet the note waits in localStorage and goes with
 * the verdict, so a reload or a lost connection loses neither.
 *
 * Keys: c edits the current row's comment (Enter or Esc: back to the rows), f toggles
 * its flag.
 */
"use strict";

window.AlvoNotes = (() => {
  let page = null;
  const waitingKey = () => `${page.storeKey}:notes`;

  function waiting() {
    try {
      return JSON.parse(localStorage.getItem(waitingKey()) || "{}");
    } catch {
      return {};
    }
  }

  function keepWaiting(row) {
    const all = waiting();
    if (!row.mine && (row.comment || row.flag)) all[row.id] = { comment: row.comment || "", flag: !!row.flag };
    else delete all[row.id];
    localStorage.setItem(waitingKey(), JSON.stringify(all));
  }

  /** The note's part of a card (label.js builds the card as one string). */
  function html(row, { esc, tag, name }) {
    const limit = (page && page.state.doc && page.state.doc.max_comment) || 1000;
    return tag("div", { class: "note" },
      tag("button", {
        type: "button", class: `flag${row.flag ? " on" : ""}`, "data-action": "flag",
        "aria-pressed": row.flag ? "true" : "false", title: "needs a second look (f)",
      }, `${row.flag ? "⚑ flagged" : "⚐ flag"}`) +
      tag("input", {
        type: "text", class: "comment", value: row.comment || "", maxlength: limit,
        placeholder: "comment (c): convention applied, what makes it hard…",
        "aria-label": `comment on ${name} (c; Enter saves)`, "data-id": row.id,
      }));
  }

  /** Send the note of a labelled row (the same verdict, with the note), or keep it here. */
  function save(row) {
    keepWaiting(row);
    if (!row.mine) return;
    page.enqueue({ kind: "label", note: true, spectrum_id: row.id, label: row.mine,
      iteration: page.state.doc.iteration, previous: row.mine, comment: row.comment || "", flag: !!row.flag });
  }

  function show(row) {
    const node = document.getElementById(`row-${row.id}`);
    if (!node) return;
    const flag = node.querySelector(".note .flag");
    flag.classList.toggle("on", !!row.flag);
    flag.setAttribute("aria-pressed", row.flag ? "true" : "false");
    flag.textContent = row.flag ? "⚑ flagged" : "⚐ flag";
    const input = node.querySelector(".note .comment");
    if (document.activeElement !== input) input.value = row.comment || "";
  }

  function toggleFlag(row) {
    row.flag = !row.flag;
    show(row);
    save(row);
    if (window.AlvoGrid) AlvoGrid.labelled(row);
  }

  function commit(input) {
    const row = page.state.byId.get(Number(input.dataset.id));
    if (!row || (row.comment || "") === input.value) return;
    row.comment = input.value;
    save(row);
  }

  function init(p) {
    page = p;
    const rows = page.$("#rows");
    rows.addEventListener("change", (event) => {
      if (event.target.matches("input.comment")) commit(event.target);
    });
    rows.addEventListener("keydown", (event) => {
      if (!event.target.matches("input.comment")) return;
      if (event.key === "Enter" || event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        commit(event.target);
        page.focusRows();
        page.select(page.state.cursor);
      }
    });
    rows.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action=flag]");
      if (!button) return;
      const node = button.closest("article.row");
      toggleFlag(page.state.byId.get(Number(node.dataset.id)));
    });
  }

  /** After a batch loads: notes typed on rows not labelled yet come back. */
  function loaded() {
    const all = waiting();
    for (const [id, note] of Object.entries(all)) {
      const row = page.state.byId.get(Number(id));
      if (row && !row.mine) Object.assign(row, note);
    }
  }

  function labelled(row) {
    keepWaiting(row); // sent with the verdict: no longer waiting here
  }

  /** Undo deleted the verdict: the note stays on the page; if an earlier verdict is in
   * effect again, it gets the note too (the service has the earlier one's). */
  function undone(row) {
    if (row.mine && (row.comment || row.flag)) save(row);
    else keepWaiting(row);
  }

  function key(event) {
    if (event.ctrlKey || event.altKey || event.metaKey) return false;
    if (document.querySelector("dialog[open]:not(#zoom)")) return false;
    const row = page.rowAt(page.state.cursor);
    if (!row) return false;
    if (event.key === "f") {
      toggleFlag(row);
      return true;
    }
    if (event.key === "c" && !document.querySelector("#zoom[open]")) {
      const input = document.querySelector(`#row-${row.id} .note .comment`);
      if (!input) return false;
      input.focus();
      input.select();
      return true;
    }
    return false;
  }

  return { init, html, loaded, labelled, undone, key };
})();
