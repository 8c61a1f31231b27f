"""The campaigns home (``/``): what alvo is, and a form that starts a campaign.

The HTML here is what a newcomer reads before any script runs: the words, the
start form with the demo archive's two collections preselected, and the VO
interfaces. ``static/home.js`` lists the campaigns, turns the form into UWS
jobs (two ``ingest`` jobs, then an ``iterate`` job, on the same job lists the
CLI and pyvo use) and follows them to the first batch. Links are relative so
the page also works under a proxy's path prefix.
"""

from __future__ import annotations

import html
import string
from pathlib import Path

#: What a demo campaign asks for unless the form says otherwise.
DEFAULT_BATCH = 100
DEFAULT_SAMPLE = 30


def home_html(service: str) -> str:
    """The page body before the script runs; ``service`` is the public URL (for the examples)."""
    page = string.Template((Path(__file__).with_name("home.html")).read_text("utf-8"))
    return page.substitute(base=html.escape(service), batch=DEFAULT_BATCH, sample=DEFAULT_SAMPLE)
