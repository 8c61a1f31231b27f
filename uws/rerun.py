"""The "Run again" form: a job's parameters as an HTML form that posts to ``{job}/again``.

A browser user edits the old values and presses the button; the POST creates a new
job on the same list (``UWSService.again``), started at once (``PHASE=RUN``), whose
``jobInfo`` names this one. Uploaded files are not re-sent: the new job gets copies
of the old one's, so UPLOAD parameters are shown, not edited.
"""

from __future__ import annotations

import html

from uws.models import JobRecord

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
    "label{display:grid;grid-template-columns:12rem 1fr;gap:.5rem;margin:.3rem 0}"
    "input{font-family:monospace}"
)


def form_html(job: JobRecord, job_url: str) -> str:
    """A page with one text field per parameter value (a repeated name gives several)."""
    e = html.escape
    fields, kept = [], []
    for name, value in job.parameters.pairs():
        if name == "upload":
            kept.append(f"<li><code>UPLOAD={e(value)}</code> (the file is copied)</li>")
            continue
        fields.append(
            f"<label><span>{e(name.upper())}</span>"
            f'<input name="{e(name.upper())}" value="{e(value)}"></label>'
        )
    uploads = f"<ul>{''.join(kept)}</ul>" if kept else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Run again: {e(job.job_list)} job {e(job.id)}</title><style>{_STYLE}</style>"
        f"</head><body><h1>Run again</h1><p>A new <code>{e(job.job_list)}</code> job from "
        f'<a href="{e(job_url)}">job {e(job.id)}</a> ({e(job.phase.value)}): edit the values, '
        "then run it. The new job's <code>jobInfo</code> names this one.</p>"
        f'<form method="post" action="{e(job_url)}/again" id="again">'
        f'<input type="hidden" name="PHASE" value="RUN">{"".join(fields)}{uploads}'
        '<p><button type="submit">Run again</button></p></form></body></html>'
    )
