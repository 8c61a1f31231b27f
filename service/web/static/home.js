/* alvo: the campaigns home. Lists the campaigns and starts a new one from the form:
 * two ingest jobs (the labelled source and the pool, in parallel), then an iterate
 * job that creates the campaign and picks its first batch, followed live through
 * UWS (jobs.js). The run is kept in localStorage, so a reload keeps following it.
 */
"use strict";

(() => {
  const body = document.body;
  const root = body.dataset.root || "";
  const service = (body.dataset.service || location.origin).replace(/\/$/, "");
  const runKey = "alvo-home:run";
  const $ = (sel, node = document) => node.querySelector(sel);
  const h = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  };
  const oracle = (name) => `${root}oracle/${encodeURIComponent(name)}`;

  // --- the campaigns -------------------------------------------------------------------------
  async function listCampaigns() {
    const list = $("#campaign-list");
    try {
      const response = await fetch(`${root}campaigns`);
      const { campaigns } = await response.json();
      if (!campaigns.length) {
        list.replaceChildren(h("p", {}, "No campaign yet. Start one below: the demo archive's two " +
          "collections are chosen for you, and the first batch is ready in a few minutes."));
        return;
      }
      const field = $("#campaign-name");
      if (campaigns.includes(field.value)) { // offer a free name, so the form is ready to go
        const stem = field.value.replace(/-\d+$/, "");
        let n = 2;
        while (campaigns.includes(`${stem}-${n}`)) n += 1;
        field.value = `${stem}-${n}`;
      }
      const summaries = await Promise.all(campaigns.map((name) =>
        fetch(`${root}campaigns/${encodeURIComponent(name)}`).then((r) => r.json())));
      list.replaceChildren(h("ul", { class: "campaign-cards" }, ...summaries.map(campaignCard)));
    } catch (error) {
      list.replaceChildren(h("p", { class: "notice warn" }, `Could not list the campaigns: ${error.message || error}`));
    }
  }

  function campaignCard(summary) {
    const labelled = Object.values(summary.label_counts || {}).reduce((a, b) => a + b, 0);
    const its = summary.iterations || [];
    return h("li", { class: "campaign-card" },
      h("h3", {}, summary.name),
      h("p", { class: "muted" }, `${summary.description ? `${summary.description} · ` : ""}source ${summary.source} · ` +
        `pool ${summary.target} · ${its.length} iteration${its.length === 1 ? "" : "s"} · ${labelled} labelled`),
      h("p", {}, h("a", { class: "button primary", href: oracle(summary.name) },
        its.length ? "Label the current batch →" : "Open the labelling page →"),
      " ", h("a", { href: `${root}oracle#campaign-${summary.name}` }, "metrics")));
  }

  // --- every job running now (started here, by alvo submit, pyvo...) -------------------------------
  const LISTS = ["ingest", "train", "classify", "iterate"];
  const UWS = "http://www.ivoa.net/xml/UWS/v1.0";
  const XLINK = "http://www.w3.org/1999/xlink";
  const watched = new Set();

  /** The QUEUED and EXECUTING jobs of every job list (UWS 1.1 PHASE filter), each followed live. */
  async function listRunning() {
    const found = [];
    await Promise.all(LISTS.map(async (list) => {
      const response = await fetch(`${root}${list}?PHASE=QUEUED&PHASE=EXECUTING`, { cache: "no-store" });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/xml");
      for (const ref of doc.getElementsByTagNameNS(UWS, "jobref")) {
        const href = ref.getAttributeNS(XLINK, "href") || `${root}${list}/${ref.getAttribute("id")}`;
        found.push({ list, id: ref.getAttribute("id"), url: new URL(href, location.href).href });
      }
    }));
    const box = $("#running-list");
    const fresh = found.filter((job) => !watched.has(job.url));
    if (!found.length && !watched.size) {
      box.replaceChildren(h("p", { class: "muted" }, "No job is running."));
      return;
    }
    if (!$("ol", box)) box.replaceChildren(h("ol", { class: "job-steps" }));
    for (const job of fresh) {
      watched.add(job.url);
      const item = h("li", { class: "job-step", "data-job": job.url },
        h("span", { class: "step-name" }, `${job.list} ${job.id}`),
        h("progress", { max: 1, value: 0, "aria-label": `${job.list} job ${job.id}: progress` }),
        h("span", { class: "step-state", "data-phase": "" }, "…"),
        h("a", { href: job.url, class: "muted" }, "job"));
      $("ol", box).append(item);
      AlvoJobs.follow(job.url, (status) => {
        $("progress", item).value = status.fraction ?? (status.phase === "COMPLETED" ? 1 : 0);
        const state = $(".step-state", item);
        state.textContent = AlvoJobs.describe(status);
        state.dataset.phase = status.phase;
      }).then(() => listCampaigns());
    }
  }

  // --- starting a campaign ------------------------------------------------------------------------
  const form = $("#start-form");

  /** The ingest job's fields for one side (source or pool) of the form, or an error. */
  function ingestFields(side, dataset) {
    const kind = form.elements[`${side}-kind`].value;
    const fields = new FormData();
    fields.set("DATASET", dataset);
    fields.set("DOMAIN", side === "source" ? "source" : "target");
    const maxrec = form.elements.MAXREC.value;
    if (kind === "demo") {
      fields.set("SSA", `${service}/ssa/${side === "source" ? "ondrejov" : "lamost"}`);
      if (side === "source") fields.set("LABELS", `${service}/archive/ondrejov/labels.csv`);
      else if (maxrec) fields.set("MAXREC", maxrec);
    } else if (kind === "ssa") {
      const url = form.elements[`${side}-ssa`].value.trim();
      if (!url) throw new Error(`give the ${side === "source" ? "source" : "pool"}'s SSA URL`);
      fields.set("SSA", url);
      const labels = side === "source" ? form.elements["source-labels"].value.trim() : "";
      if (labels) fields.set("LABELS", labels);
      if (side === "pool" && maxrec) fields.set("MAXREC", maxrec);
    } else {
      const file = form.elements[`${side}-file`].files[0];
      if (!file) throw new Error(`choose the ${side === "source" ? "source" : "pool"}'s VOTable of references`);
      fields.set("UPLOAD", "refs,param:refs");
      fields.set("refs", file, file.name);
    }
    return fields;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.CAMPAIGN.value.trim();
    let jobs;
    try {
      const known = await fetch(`${root}campaigns`).then((r) => r.json());
      if (known.campaigns.includes(name)) {
        throw new Error(`a campaign named ${name} exists: open it above, or choose another name`);
      }
      const source = ingestFields("source", `${name}-source`);
      const pool = ingestFields("pool", `${name}-pool`);
      $("#start-button").disabled = true;
      const [sourceUrl, poolUrl] = await Promise.all([
        AlvoJobs.start(`${root}ingest`, source), AlvoJobs.start(`${root}ingest`, pool)]);
      jobs = [{ step: "ingest the labelled source", url: sourceUrl },
        { step: "ingest the pool", url: poolUrl }];
      jobs.forEach((job) => watched.add(job.url)); // shown with the run, not twice
    } catch (error) {
      $("#start-button").disabled = false;
      showRun(null, error.message || String(error));
      return;
    }
    const iterate = {};
    for (const field of ["BATCH", "PRECISION_SAMPLE", "MODEL", "EPOCHS"]) {
      if (form.elements[field].value) iterate[field] = form.elements[field].value;
    }
    const run = { campaign: name, jobs, iterate };
    localStorage.setItem(runKey, JSON.stringify(run));
    await follow(run);
  });

  // --- following the run ---------------------------------------------------------------------------
  function showRun(run, error) {
    const box = $("#run");
    const rows = (run ? run.jobs : []).map((job, i) => h("li", { class: "job-step", id: `step-${i}` },
      h("span", { class: "step-name" }, job.step),
      h("progress", { max: 1, value: 0, "aria-label": `${job.step}: progress` }),
      h("span", { class: "step-state", "data-phase": "" }, "waiting"),
      h("a", { href: job.url, class: "muted" }, "job")));
    box.replaceChildren(
      run ? h("h3", {}, `Starting ${run.campaign}`) : "",
      run ? h("ol", { class: "job-steps" }, ...rows) : "",
      error ? h("p", { class: "notice warn", role: "alert" }, error) : "");
  }

  function update(i, status) {
    const row = $(`#step-${i}`);
    if (!row) return;
    $("progress", row).value = status.fraction ?? (status.phase === "COMPLETED" ? 1 : 0);
    const state = $(".step-state", row);
    state.textContent = AlvoJobs.describe(status);
    state.dataset.phase = status.phase;
  }

  async function follow(run) {
    showRun(run);
    const ingests = run.jobs.slice(0, 2);
    const done = await Promise.all(ingests.map((job, i) => AlvoJobs.follow(job.url, (s) => update(i, s))
      .then(async (final) => { await showFailures(i, final); return final; })));
    const failed = done.findIndex((s) => s.phase !== "COMPLETED");
    if (failed >= 0) return stop(run, `${run.jobs[failed].step} ended ${done[failed].phase}: ${done[failed].error}`);
    if (run.jobs.length < 3) {
      const fields = new URLSearchParams({ CAMPAIGN: run.campaign, SOURCE: `${run.campaign}-source`,
        TARGET: `${run.campaign}-pool`, ...run.iterate });
      try {
        run.jobs.push({ step: "train, classify the pool, choose the batch", url: await AlvoJobs.start(`${root}iterate`, fields) });
        watched.add(run.jobs[2].url);
      } catch (error) {
        return stop(run, error.message || String(error));
      }
      localStorage.setItem(runKey, JSON.stringify(run));
      showRun(run);
      done.forEach((s, i) => update(i, s));
      for (const [i, node] of Object.entries(shownFailures)) $(`#step-${i}`)?.append(node);
    }
    const final = await AlvoJobs.follow(run.jobs[2].url, (s) => update(2, s));
    if (final.phase !== "COMPLETED") return stop(run, `the iteration ended ${final.phase}: ${final.error}`);
    localStorage.removeItem(runKey);
    $("#start-button").disabled = false;
    $("#run").append(h("p", { class: "ready" }, `The first batch of ${run.campaign} is ready. `,
      h("a", { class: "button primary", id: "open-batch", href: oracle(run.campaign) }, "Label it →")));
    listCampaigns();
    return final;
  }

  /**
   * The spectra an ingest left out, each with its named reason (the job's `failures`
   * VOTable), listed under its step once it has ended: they stay on the page after the
   * job completes, with counts per reason, so a campaign smaller than asked says why.
   */
  async function showFailures(i, final) {
    const href = final.results && final.results.failures;
    const row = $(`#step-${i}`);
    if (!href || !row) return;
    let rows = [];
    try {
      const doc = new DOMParser().parseFromString(await (await fetch(href)).text(), "text/xml");
      const names = [...doc.getElementsByTagName("FIELD")].map((f) => f.getAttribute("name"));
      rows = [...doc.getElementsByTagName("TR")].map((tr) => Object.fromEntries(
        [...tr.getElementsByTagName("TD")].map((td, k) => [names[k], td.textContent])));
    } catch {
      return;
    }
    if (!rows.length) return;
    const counts = {};
    for (const r of rows) counts[r.reason] = (counts[r.reason] || 0) + 1;
    const summary = Object.entries(counts).map(([reason, n]) => `${n} ${reason}`).join(", ");
    shownFailures[i] = h("details", { class: "failures", id: `failures-${i}` },
      h("summary", {}, `${rows.length} spectra left out: ${summary}`),
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "spectrum"), h("th", { scope: "col" }, "reason"),
          h("th", { scope: "col" }, "detail"))),
        h("tbody", {}, ...rows.slice(0, 200).map((r) => h("tr", {},
          h("td", {}, r.pubdid || r.reference || ""), h("td", {}, h("code", {}, r.reason || "")),
          h("td", {}, r.detail || ""))))),
      rows.length > 200 ? h("p", {}, h("a", { href }, `all ${rows.length} (VOTable)`)) : "");
    row.append(shownFailures[i]);
  }
  const shownFailures = {};

  function stop(run, message) {
    localStorage.removeItem(runKey);
    $("#start-button").disabled = false;
    $("#run").append(h("p", { class: "notice warn", role: "alert" }, message));
  }

  // --- start ------------------------------------------------------------------------------------------
  const pending = JSON.parse(localStorage.getItem(runKey) || "null");
  if (pending) pending.jobs.forEach((job) => watched.add(job.url));
  Promise.all([listCampaigns(), listRunning()]).then(() => {
    body.dataset.ready = "1";
    if (pending) {
      $("#start-button").disabled = true;
      follow(pending);
    }
  });
})();
