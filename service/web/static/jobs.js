/* alvo pages: start and follow UWS 1.1 jobs from the browser (the same job lists the
 * CLI and pyvo use: POST /ingest, /iterate with PHASE=RUN; GET the job with WAIT).
 *
 * AlvoJobs.start(list, fields) -> job URL; AlvoJobs.follow(url, onStatus) -> final status.
 * Each status carries the phase, jobInfo progress (fraction, message), the time
 * since the job was seen first and, once the fraction has moved, an estimate of
 * the time left (linear in the fraction since it first moved).
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
    const results = {};
    for (const result of doc.getElementsByTagNameNS(UWS, "result")) {
      results[result.getAttribute("id")] = result.getAttributeNS("http://www.w3.org/1999/xlink", "href");
    }
    return {
      phase,
      fraction: Number.isFinite(fraction) ? fraction : null,
      message: (progress && progress.textContent) || "",
      error: doc.getElementsByTagNameNS(UWS, "message")[0]?.textContent || "",
      results,
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
    if (status.left !== null) parts.push(`about ${duration(status.left)} left`);
    return parts.join(" · ");
  }

  /**
   * Follow a job until it ends, calling onStatus at every change and every second
   * (the elapsed time counts on while the service is busy). UWS WAIT answers at once
   * on a phase change; progress is read at least every 3 s.
   */
  async function follow(url, onStatus) {
    const seen = performance.now();
    let phase = "";
    let status = { phase: "", fraction: null, message: "", error: "", results: {}, elapsed: 0, left: null };
    let moved = null; // [time, fraction] when the fraction first moved
    const tick = setInterval(() => {
      status.elapsed = (performance.now() - seen) / 1000;
      if (status.left !== null) status.left = Math.max(0, status.left - 1);
      if (status.phase) onStatus(status); // nothing to say before the first answer
    }, 1000);
    try {
      for (;;) {
        let text;
        try {
          const wait = phase && !FINAL.includes(phase) ? `?WAIT=3&PHASE=${phase}` : "";
          const response = await fetch(`${url}${wait}`, { cache: "no-store" });
          if (response.status === 404) return { ...status, phase: "ABORTED", error: "the job is gone" };
          text = await response.text();
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 2000));
          continue;
        }
        const now = performance.now();
        const fresh = parse(text);
        let left = null;
        if (fresh.fraction !== null && fresh.fraction > 0) {
          if (!moved || fresh.fraction < moved[1]) moved = [now, fresh.fraction];
          else if (fresh.fraction > moved[1]) {
            const rate = (fresh.fraction - moved[1]) / ((now - moved[0]) / 1000);
            left = (1 - fresh.fraction) / rate;
          }
        }
        status = { ...fresh, elapsed: (now - seen) / 1000, left };
        phase = status.phase;
        onStatus(status);
        if (FINAL.includes(phase)) return status;
      }
    } finally {
      clearInterval(tick);
    }
  }

  return { start, follow, describe, duration, parse, FINAL };
})();
