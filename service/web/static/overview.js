/* alvo oracle: campaigns overview -- metrics per iteration, learning curve, confusion matrix. */
"use strict";

(() => {
  const body = document.body;
  const root = body.dataset.root || "";
  const h = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  };
  const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
  const CLASS_KEYS = [["single-peak", "single_peak"], ["double-peak", "double_peak"], ["absorption", "absorption"]];

  body.classList.add("overview");
  const main = h("main", { class: "campaigns" });
  body.append(h("header", { class: "bar" }, h("div", { class: "line" },
    h("a", { href: root || "./", class: "home" }, "alvo"), h("span", { class: "crumb", "aria-hidden": "true" }, " › "),
    h("h1", {}, "campaign overview"),
    h("span", { class: "spacer" }),
    h("a", { href: `${root}iterate` }, "iterate jobs"), " · ",
    h("a", { href: `${root}tap` }, "TAP"))), main);

  async function json(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  async function show() {
    const { campaigns } = await json(`${root}campaigns`);
    if (!campaigns.length) {
      main.append(h("p", { class: "empty" }, "No campaign yet: ",
        h("a", { href: root || "./" }, "start one on the campaigns home"), " (or run an iterate job with SOURCE and TARGET)."));
    }
    for (const name of campaigns) {
      const base = `${root}campaigns/${encodeURIComponent(name)}`;
      const [summary, performance] = await Promise.all([json(base), json(`${base}/performance`)]);
      main.append(section(summary, performance));
    }
    body.dataset.ready = "1";
  }

  function section(summary, performance) {
    const its = summary.iterations;
    const counts = summary.label_counts;
    const labelled = Object.values(counts).reduce((a, b) => a + b, 0);
    const rows = its.map((it) => h("tr", {},
      h("td", {}, String(it.number)),
      h("td", {}, pct(it.error)),
      ...CLASS_KEYS.map(([, key]) => h("td", {}, it[`precision_${key}`] === null || it[`precision_${key}`] === undefined
        ? "–" : `${pct(it[`precision_${key}`])} (≥ ${pct(it[`precision_${key}_lower`])})`)),
      h("td", {}, String(it.n_labels ?? "–")),
      h("td", {}, h("a", { href: `${root}oracle/${encodeURIComponent(summary.name)}?iteration=${it.number}` }, "batch"))));
    const table = h("table", { class: "metrics" },
      h("thead", {}, h("tr", {}, h("th", {}, "iteration"), h("th", {}, "error"),
        ...CLASS_KEYS.map(([name]) => h("th", {}, `precision ${name} (95% lower bound)`)),
        h("th", {}, "oracle labels"), h("th", {}, ""))),
      h("tbody", {}, ...rows));
    const series = [{ name: "error", color: "#b91c1c", points: its.filter((it) => it.error !== null).map((it) => [it.number, it.error]) }];
    const colors = { "single-peak": "#c2410c", "double-peak": "#7e22ce", absorption: "#1d4ed8" };
    for (const [name, key] of CLASS_KEYS.slice(0, 2)) {
      const scored = its.filter((it) => it[`precision_${key}`] !== null && it[`precision_${key}`] !== undefined);
      series.push({ name: `precision ${name}`, color: colors[name], dash: "5 3",
        points: scored.map((it) => [it.number, it[`precision_${key}`]]),
        band: scored.map((it) => [it.number, it[`precision_${key}_lower`] ?? it[`precision_${key}`], it[`precision_${key}`]]) });
    }
    const curve = AlvoPlot.lineChart(series, { percent: true, title: `${summary.name}: learning curve` });
    const legend = h("div", { class: "legend" }, ...series.map((s) => h("span", {},
      h("i", { class: "sw", style: `background:${s.color}` }), ` ${s.name} `)),
    h("span", { class: "muted" }, " (bars and shading: down to the 95% lower bound)"));
    const numbers = Object.keys(performance.confusion).map(Number);
    const latest = numbers.length ? Math.max(...numbers) : null;
    return h("section", { class: "campaign", id: `campaign-${summary.name}` },
      h("h2", {}, summary.name, " ", h("a", { class: "button primary", href: `${root}oracle/${encodeURIComponent(summary.name)}` }, "Label the current batch →")),
      h("p", { class: "muted" }, `${summary.description ? `${summary.description} · ` : ""}source ${summary.source} · pool ${summary.target} · batch ${summary.batch_size} · ` +
        `${labelled} pool spectra labelled (${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ") || "none"})` +
        `${summary.conflicts.length ? ` · ⚠ ${summary.conflicts.length} conflicts` : ""}`),
      h("div", { class: "panels" },
        h("figure", {}, curve, h("figcaption", {}, "Learning curve: error of the query batch and precision of the precision sample"), legend),
        latest === null ? h("figure", {}, h("p", { class: "muted" }, "No labelled batch yet."))
          : confusionFigure(performance, numbers, latest)),
      table);
  }

  /** The confusion of one iteration, with a selector for the others. */
  function confusionFigure(performance, numbers, latest) {
    const figure = h("figure", {});
    const choose = h("select", { "aria-label": "iteration of the confusion matrix" },
      ...numbers.map((n) => h("option", { value: n, selected: n === latest ? "" : null }, String(n))));
    const show = (n) => figure.replaceChildren(confusion(performance, n), h("figcaption", {},
      "Confusion of iteration ", choose, ": predicted class (rows) × oracle verdict (columns), query and precision-sample spectra"));
    choose.addEventListener("change", () => show(Number(choose.value)));
    show(latest);
    return figure;
  }

  function confusion(performance, number) {
    const cells = performance.confusion[String(number)] || {};
    const max = Math.max(1, ...Object.values(cells).flatMap((row) => Object.values(row)));
    return h("table", { class: "confusion", "aria-label": `confusion matrix of iteration ${number}` },
      h("thead", {}, h("tr", {}, h("th", {}, "predicted ↓ / oracle →"), ...performance.verdicts.map((v) => h("th", {}, v)))),
      h("tbody", {}, ...performance.classes.map((predicted) => h("tr", {}, h("th", {}, predicted),
        ...performance.verdicts.map((verdict) => {
          const n = (cells[predicted] || {})[verdict] || 0;
          const strength = n / max;
          const good = predicted === verdict;
          return h("td", { style: `background: rgba(${good ? "22,163,74" : "220,38,38"},${(0.08 + 0.6 * strength).toFixed(2)})` }, String(n));
        })))));
  }

  show().catch((error) => main.append(h("p", { class: "notice warn" }, String(error))));
})();
