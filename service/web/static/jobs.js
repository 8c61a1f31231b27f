/* alvo pages: start and follow UWS 1.1 jobs from the browser (the same job lists the
 * CLI and pyvo use: POST /ingest, /iterate with PHASE=RUN; GET the job with WAIT).
 *
 * AlvoJobs.start(list, fields) -> job URL; AlvoJobs.follow(url, onStatus) -> final status;
 * AlvoJobs.running(list, parameter, value) -> URLs of that list's QUEUED/EXECUTING jobs
 * with that parameter (a job started in another tab, by alvo submit or pyvo).
 * Each status carries the phase, jobInfo progress (fraction, message), the time
 * since the job's own startTime (so a reload or a new tab shows the same) and an
 * estimate of the time left. alvo's jobs report a fraction of their expected *time*
 * (service/jobs/eta.py: epochs to early stopping, earlier iterations, rows per
 * second), so the time left is elapsed x (1 - f) / f at each report, counted down
 * between reports; it never rises while the job is silent.
 */
"use strict";

const AlvoJobs = (() => {
  const UWS = "http://www.ivoa.net/xml/UWS/v1.0";
  const JOBINFO = "urn:x-uws:jobinfo";
  const FINAL = ["COMPLETED", "ERROR", "ABORTED"];

  /** Create and run a job; fields: URLSearchParams or FormData (with files: UPLOAD). */
  async function start(listUrl, fields) {
    fields.set("PHASE", "RUN");
    const response = await fetch(listUrl, { method: "POST", body: fields });
    if (!response.ok) {
      const text = await response.text();
      let detail = text;
      try {
        detail = JSON.parse(text).error || text;
      } catch {
        const doc = new DOMParser().parseFromString(text, "text/html");
        detail = (doc.body && doc.body.textContent) || text;
      }
      throw new Error(`${listUrl.split("/").pop()} refused the job: ${detail.trim().slice(0, 400)}`);
    }
    return response.url.split("?")[0]; // the 303 to the job, followed
  }

  function parse(text) {
    const doc = new DOMParser().parseFromString(text, "text/xml");
    const phase = doc.getElementsByTagNameNS(UWS, "phase")[0]?.textContent || "";
    const progress = doc.getElementsByTagNameNS(JOBINFO, "progress")[0];
    const fraction = progress ? Number(progress.getAttribute("fraction")) : NaN;
    const reported = progress ? Date.parse(progress.getAttribute("time") || "") : NaN;
    const parameters = {};
    for (const parameter of doc.getElementsByTagNameNS(UWS, "parameter")) {
      parameters[parameter.getAttribute("id").toLowerCase()] = parameter.textContent;
    }
    const when = (tag) => {
      const text = doc.getElementsByTagNameNS(UWS, tag)[0]?.textContent || "";
      const time = text ? Date.parse(text) : NaN;
      return Number.isFinite(time) ? time : null;
    };
    const results = {};
    for (const result of doc.getElementsByTagNameNS(UWS, "result")) {
      results[result.getAttribute("id")] = result.getAttributeNS("http://www.w3.org/1999/xlink", "href");
    }
    return {
      phase,
      fraction: Number.isFinite(fraction) ? fraction : null,
      reported: Number.isFinite(reported) ? reported : null, // when the job said it
      message: (progress && progress.textContent) || "",
      error: doc.getElementsByTagNameNS(UWS, "message")[0]?.textContent || "",
      results,
      parameters,
      creationTime: when("creationTime"),
      startTime: when("startTime"),
      endTime: when("endTime"),
    };
  }

  /** "1 min 5 s" */
  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  }

  /** The words under a progress bar: what runs, for how long, how long it may still take. */
  function describe(status) {
    if (status.phase === "COMPLETED") return `completed in ${duration(status.elapsed)}`;
    if (status.phase === "ERROR") return `error: ${status.error || "see the job"}`;
    if (FINAL.includes(status.phase)) return status.phase.toLowerCase();
    const parts = [status.message || status.phase.toLowerCase()];
    if (status.fraction !== null) parts.push(`${Math.round(status.fraction * 100)} %`);
    parts.push(`${duration(status.elapsed)} so far`);
    if (status.phase === "QUEUED") parts.push("waiting for a worker");
    else if (status.left === null) parts.push("time left: known after the first steps");
    else if (status.left > 0) parts.push(`about ${duration(status.left)} left`);
    else parts.push("taking longer than estimated");
    return parts.join(" · ");
  }

  /**
   * Follow a job until it ends, calling onStatus at every change and every second
   * (the elapsed time counts on while the service is busy). UWS WAIT answers at once
   * on a phase change and, from alvo's service, at a new progress report (at most every
   * 0.5 s a job); elsewhere progress is read at least every 3 s. Times are the service's:
   * the offset of its clock is read from each answer's Date header.
   */
  async function follow(url, onStatus) {
    let phase = "";
    let status = { phase: "", fraction: null, message: "", error: "", results: {}, elapsed: 0, left: null };
    let offset = 0; // service clock - this clock, ms
    let estimate = null; // [time of the report, seconds left then]
    const clock = () => Date.now() + offset;
    const since = (s) => {
      const from = s.startTime ?? s.creationTime;
      const to = FINAL.includes(s.phase) && s.endTime ? s.endTime : clock();
      return from === null ? 0 : Math.max(0, (to - from) / 1000);
    };
    const left = () => (estimate ? Math.max(0, estimate[1] - (clock() - estimate[0]) / 1000) : null);
    const tick = setInterval(() => {
      status.elapsed = since(status);
      status.left = left();
      if (status.phase) onStatus(status); // nothing to say before the first answer
    }, 1000);
    try {
      for (;;) {
        let text;
        try {
          const wait = phase && !FINAL.includes(phase) ? `?WAIT=3&PHASE=${phase}` : "";
          const response = await fetch(`${url}${wait}`, { cache: "no-store" });
          if (response.status === 404) return { ...status, phase: "ABORTED", error: "the job is gone" };
          const date = Date.parse(response.headers.get("Date") || "");
          if (Number.isFinite(date)) offset = date + 500 - Date.now(); // Date has whole seconds
          text = await response.text();
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 2000));
          continue;
        }
        const fresh = parse(text);
        const elapsed = since(fresh);
        const moved = fresh.fraction !== null && fresh.fraction !== status.fraction;
        if (fresh.phase !== "EXECUTING" || fresh.startTime === null) estimate = null;
        else if (moved && fresh.fraction > 0 && fresh.fraction < 1) {
          // as of the report, not of this look: a fraction seen 1-3 s late early in a
          // short job would otherwise be taken as that much slower (+40-70 % at 25 %)
          const at = fresh.reported !== null ? Math.min(fresh.reported, clock()) : clock();
          const then = Math.max(0, (at - fresh.startTime) / 1000);
          estimate = [at, (then * (1 - fresh.fraction)) / fresh.fraction];
        }
        status = { ...fresh, elapsed, left: left() };
        phase = status.phase;
        onStatus(status);
        if (FINAL.includes(phase)) return status;
      }
    } finally {
      clearInterval(tick);
    }
  }

  /** URLs of the QUEUED and EXECUTING jobs of a list whose `parameter` is `value`, oldest first. */
  async function running(listUrl, parameter, value) {
    const response = await fetch(`${listUrl}?PHASE=QUEUED&PHASE=EXECUTING`, { cache: "no-store" });
    if (!response.ok) return [];
    const doc = new DOMParser().parseFromString(await response.text(), "text/xml");
    const refs = [...doc.getElementsByTagNameNS(UWS, "jobref")]
      .map((ref) => new URL(`${listUrl}/${ref.getAttribute("id")}`, location.href).href); // same origin
    const jobs = await Promise.all(refs.map(async (href) => {
      const job = await fetch(href, { cache: "no-store" }).then((r) => (r.ok ? r.text() : "")).catch(() => "");
      return job && parse(job).parameters[parameter.toLowerCase()] === value ? href : null;
    }));
    return jobs.filter(Boolean).reverse(); // the list is newest first
  }

  return { start, follow, running, describe, duration, parse, FINAL };
})();
