"""Result documents of the learning jobs: candidate VOTables, metrics, plots.

The metadata (names, UCDs, utypes, units, descriptions, the DataLink service
descriptor) lives in ``votable_templates/``; this module only takes rows from
:mod:`service.store` (the candidate rows of :mod:`service.store.candidates`, the
``iteration`` rows) and lets :mod:`service.vo.templates` encode them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.settings import Settings
from service.store import archive_roots
from service.store.candidates import candidate_rows, spectrum_rows
from service.store.engine import engine_for
from service.vo import templates


def candidates_votable(
    settings: Settings,
    campaign: Any,
    iteration: int,
    roles: Sequence[str] | None,
    kind: str,
    serialization: str = "tabledata",
) -> bytes:
    """The candidates (or query batch) of an iteration as a VOTable for TOPCAT and Aladin
    (a tree-ingested file as the URL the service serves it at, not ``file://``)."""
    engine = engine_for(settings.sqlalchemy_url)
    rows = candidate_rows(engine, campaign.campaign_id, iteration, roles)
    rows = archive_roots.load(settings).served_rows(rows, settings.public_url)
    info = {"campaign": campaign.name, "iteration": str(iteration), "kind": kind}
    return rows_votable(rows, info, serialization)


def rows_votable(
    rows: Sequence[dict[str, Any]], info: dict[str, str], serialization: str = "tabledata"
) -> bytes:
    """Fill ``votable_templates/candidates.xml`` with prediction rows (see
    :func:`service.store.candidates.candidate_rows`)."""
    document = templates.load("candidates.xml")
    for name in ("campaign", "iteration", "kind", "model"):
        if name in info:
            document.by_id(f"info_{name}").set("value", info[name])
        else:
            document.remove(f"//v:INFO[@ID='info_{name}']")

    def column(name: str, dtype: Any = object) -> np.ndarray:
        values = [row.get(name) for row in rows]
        if dtype is object:
            return np.array(values, dtype=object)
        return np.array([np.nan if v is None else v for v in values], dtype=dtype)

    text: tuple[str, ...] = (
        "pubdid",
        "obsid",
        "designation",
        "predicted_class",
        "hou_verdict",
        "role",
        "reason",
    )
    text += ("label", "simbad_id")
    document.fill(
        "candidates",
        {
            **{name: column(name) for name in (*text, "access_url")},
            "ra": column("ra", float),
            "dec": column("dec", float),
            "snr": column("snr", np.float32),
            "entropy": column("entropy", np.float32),
            "p_single_peak": column("p_single_peak", np.float32),
            "p_double_peak": column("p_double_peak", np.float32),
            "p_absorption": column("p_absorption", np.float32),
            "iteration": np.ma.masked_array(
                [row.get("iteration") or 0 for row in rows],
                mask=[row.get("iteration") is None for row in rows],
                dtype=np.int32,
            ),
            "access_format": np.array(["application/fits"] * len(rows), dtype=object),
            "datalink": column("datalink_url"),
        },
        serialization,
    )
    return _with_datalink_service(document, rows)


def surprises_votable(
    settings: Settings,
    campaign: Any,
    iteration: int,
    ranked: Sequence[dict[str, Any]],
    method: str,
    serialization: str = "tabledata",
) -> bytes:
    """The most surprising pool spectra (``votable_templates/surprises.xml``); ``ranked``
    holds, in the order to look at them, ``spectrum_id``, ``surprise``, ``relevance``,
    ``nearest_class`` and ``class_distance`` of each; the rest comes from the store."""
    engine = engine_for(settings.sqlalchemy_url)
    described = spectrum_rows(
        engine, campaign.campaign_id, iteration, [r["spectrum_id"] for r in ranked]
    )
    rows = [{**described[int(r["spectrum_id"])], **r, "rank": n} for n, r in enumerate(ranked, 1)]
    rows = archive_roots.load(settings).served_rows(rows, settings.public_url)
    document = templates.load("surprises.xml")
    document.by_id("info_campaign").set("value", campaign.name)
    document.by_id("info_iteration").set("value", str(iteration))
    document.by_id("info_method").set("value", method)

    def column(name: str, dtype: Any = object) -> np.ndarray:
        values = [row.get(name) for row in rows]
        if dtype is object:
            return np.array(values, dtype=object)
        return np.array([np.nan if v is None else v for v in values], dtype=dtype)

    text = ("nearest_class", "pubdid", "obsid", "designation", "predicted_class", "label")
    floats: tuple[str, ...] = ("surprise", "relevance", "class_distance", "snr", "entropy")
    floats += ("p_single_peak", "p_double_peak", "p_absorption")
    document.fill(
        "surprises",
        {
            **{name: column(name) for name in (*text, "simbad_id", "access_url")},
            **{name: column(name, np.float32) for name in floats},
            "rank": column("rank", np.int32),
            "spectrum_id": column("spectrum_id", np.int64),
            "ra": column("ra", float),
            "dec": column("dec", float),
            "access_format": np.array(["application/fits"] * len(rows), dtype=object),
            "datalink": column("datalink_url"),
        },
        serialization,
    )
    return _with_datalink_service(document, rows)


def _datalink_base(urls: Sequence[str | None]) -> str:
    """The one DataLink endpoint all rows use (``…/datalink/x`` of ``…?ID=``), if any."""
    bases = {str(url).split("?", 1)[0] for url in urls if url}
    return bases.pop() if len(bases) == 1 and all(urls) else ""


#: Float columns of the metrics table, read from the ``iteration`` rows as they are.
METRIC_FLOATS = (
    "error",
    "precision_emission",
    "precision_emission_lower",
    "precision_single_peak",
    "precision_single_peak_lower",
    "precision_double_peak",
    "precision_double_peak_lower",
    "precision_estimate",
    "precision_estimate_lower",
    "catalogue_estimate",
    "catalogue_estimate_lower",
    "churn",
    "candidate_agreement",
    "train_seconds",
    "classify_seconds",
)
METRIC_INTS = (
    "iteration",
    "n_labels",
    "n_answered",
    "n_candidates",
    "n_sample_judged",
    "n_flipped",
    "n_uncertain",
    "n_catalogue",
)


def metrics_votable(campaign: Any, iterations: list[dict[str, Any]]) -> bytes:
    """``votable_templates/metrics.xml`` with one row per iteration (see Campaigns.iterations);
    every value of a row describes that iteration's model and batch."""
    document = templates.load("metrics.xml")
    document.by_id("info_campaign").set("value", campaign.name)

    def values(key: str, dtype: Any) -> np.ndarray:
        data = [it.get("number" if key == "iteration" else key) for it in iterations]
        return np.ma.masked_array(
            [0 if v is None else v for v in data], mask=[v is None for v in data], dtype=dtype
        )

    document.fill(
        "metrics",
        {
            **{key: values(key, np.int32) for key in METRIC_INTS},
            **{key: values(key, np.float32) for key in METRIC_FLOATS},
            "strategy": np.array([it.get("strategy") for it in iterations], dtype=object),
        },
    )
    return document.to_bytes()


def learning_curve_png(campaign: Any, iterations: list[dict[str, Any]]) -> bytes:
    from service.plots import learning_curve_figure, save_png  # matplotlib: only to draw

    labels = [it.get("n_labels") or 0 for it in iterations]
    error = [np.nan if it.get("error") is None else it["error"] for it in iterations]
    precision = [
        np.nan if it.get("precision_emission") is None else it["precision_emission"]
        for it in iterations
    ]
    figure = learning_curve_figure(
        labels,
        {"error on the query batch": error, "precision (emission vs absorption)": precision},
        xlabel="oracle labels in the training set",
        ylabel="fraction",
        title=f"campaign {campaign.name}",
    )
    out = io.BytesIO()
    save_png(figure, out)
    return out.getvalue()


def _with_datalink_service(
    document: templates.VOTableDocument, rows: Sequence[dict[str, Any]]
) -> bytes:
    """The document with its DataLink service descriptor pointed at the rows' DataLink
    service, or without one when the spectra come from archives without a single one."""
    base = _datalink_base([row.get("datalink_url") for row in rows])
    if base:
        document.set_param("dl_accessURL", base)
    else:
        document.remove("//v:RESOURCE[@ID='datalink_service']")
    return document.to_bytes()
