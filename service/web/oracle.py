"""What the oracle's page shows, gathered from the result tables, the feature store and the files.

No HTTP here: :func:`batch` builds the one compact document the labelling page
loads (every row of a query batch with its metadata, the classifier's view, the
labels so far, the native spectrum around H-alpha and the adapted 140-pixel
vector) and :func:`performance` the per-iteration metrics and confusion matrices
of the overview. The rows themselves come from :mod:`service.store`.

Arrays travel as base64 of little-endian float32 (``Float32Array`` in the
browser reads them without parsing): a LAMOST window is ~100 pixels, an
Ondrejov one ~1000, so a 130-row batch is a few hundred kB at most.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.net.fetch import Fetcher
from service.reasons import AlvoError
from service.settings import Settings
from service.store import archive_roots
from service.store.archive_roots import Roots
from service.store.campaigns import Campaign, Campaigns
from service.store.candidates import candidate_rows, spectrum_rows, surprise_rows
from service.store.schema import MAX_COMMENT
from service.store.stars import spectra_near, verdicts_on_same_stars
from service.vocabulary import (
    ABSORPTION,
    BAD,
    BATCH_ROLES,
    BORING,
    CANDIDATE,
    CLASSES,
    DOUBLE_PEAK,
    FEATURE_PIXELS,
    FEATURE_WINDOW,
    INTERESTING,
    NOT_SURE,
    PADDING,
    PRECISION_SAMPLE,
    QUERY,
    SIMILAR,
    SINGLE_PEAK,
    SURPRISE,
    VERDICTS,
)

#: Å, vacuum: the native spectrum sent per row. Wide enough for the whole adapted
#: vector (6519-6732 Å); the page opens on 6500-6640 Å, the H-alpha region.
WINDOW = (6500.0, 6740.0)
#: ``spectrum`` columns each row of the page shows beyond the candidate row's.
PAGE_COLUMNS = (
    "row_index", "object", "magnitude", "mjd", "pipeline_class", "collection", "quality_flag",
)  # fmt: skip
#: Most candidate rows one request returns (the page asks for them on demand).
MAX_CANDIDATES = 500
#: arcsec: neighbours closer than this may contaminate the spectrum (LAMOST fibres
#: are 3.3" across, seeing adds ~2").
FIBRE_REACH = 5.0
#: arcsec: a spectrum this close (or with the same designation or object name) is the
#: same star observed again -- another epoch, the other archive's twin -- not a neighbour.
SAME_STAR = 1.5
#: Å, vacuum: the wide view of each row (H-beta to past He I 6678), binned to at most
#: OVERVIEW_PIXELS so a 130-row batch stays a few hundred kB.
OVERVIEW = (4700.0, 6800.0)
OVERVIEW_PIXELS = 240
#: Å, vacuum: lines marked on the plots.
LINES = {"Hβ": 4862.68, "He I 5876": 5877.25, "Hα": 6564.61, "He I 6678": 6679.99}
#: Why a row is in the batch, when the iterate job did not record a reason itself.
ROLE_REASONS = {
    QUERY: "asked: the query strategy found the network least sure here (entropy H)",
    PRECISION_SAMPLE: "random predicted emission-line spectrum: its verdict measures precision",
    PADDING: "padding: fills the batch when too few emission-line candidates were left",
    CANDIDATE: "predicted emission-line spectrum, not in the batch",
}
#: The key that gives each verdict on the page.
KEYS = {"1": SINGLE_PEAK, "2": DOUBLE_PEAK, "3": ABSORPTION, "4": NOT_SURE, "5": BAD}
#: The keys of the relevance answers (kept apart from the verdicts: never trained on).
RELEVANCE_KEYS = {"i": INTERESTING, "b": BORING}
#: Most surprises the page's surprises view shows.
MAX_SURPRISES = 500
#: Neighbours key ``m`` asks for by default, and at most.
SIMILAR_K, MAX_SIMILAR_K = 10, 100


def encode(values: np.ndarray) -> str:
    """base64 of little-endian float32 (NaN kept: the page leaves a gap there)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


@dataclasses.dataclass(frozen=True)
class BatchRequest:
    campaign: str
    iteration: int | None = None  # None: the latest iteration with predictions
    roles: Sequence[str] = BATCH_ROLES
    limit: int | None = None
    user: str = ""
    like: str | None = None  # role similar: the spectrum (publisher DID or spectrum_id)
    k: int = SIMILAR_K  # role similar: how many neighbours


def batch(settings: Settings, request: BatchRequest) -> dict[str, Any]:
    """The labelling page's document for one iteration's batch (or its candidates)."""
    campaigns = Campaigns(settings).seen_by(request.user or None)
    campaign = campaigns.require(request.campaign)
    number = request.iteration
    if number is None:
        number = campaigns.last_predicted_iteration(campaign)
    iterations = campaigns.iterations(campaign)
    this = next((it for it in iterations if it["number"] == number), {})
    document: dict[str, Any] = {
        "campaign": campaign.name,
        "description": campaign.description,
        "user": request.user,
        "iteration": number,
        "iterations": [it["number"] for it in iterations],
        # what the page says of the batch: how many it could have held, how many
        # spectra the network predicted as emission (labelled or not)
        "batch_size": campaign.batch_size,
        "n_candidates": this.get("n_candidates"),
        "roles": list(request.roles),
        "keys": KEYS,
        "relevance_keys": RELEVANCE_KEYS,
        "max_comment": MAX_COMMENT,
        "classes": list(CLASSES),
        "window": list(WINDOW),
        "grid": [*FEATURE_WINDOW, FEATURE_PIXELS],
        "overview": list(OVERVIEW),
        "lines": LINES,
        "exemplars": exemplars(campaigns, campaign),
        "rows": [],
    }
    if number is None:
        return document
    rows = _rows(settings, campaigns, campaign, number, request)
    if request.limit is not None:
        rows = rows[: request.limit]
    if not rows:
        return document
    ids = [int(row["spectrum_id"]) for row in rows]
    votes = _votes(campaigns, campaign, ids)
    relevance = _relevance(campaigns, campaign, ids)
    notes = campaigns.notes(campaign, ids, request.user)
    history = _history(campaigns, campaign, ids)
    positions = [r["ra"] for r in rows], [r["dec"] for r in rows]
    names = [(row["designation"], row["object"]) for row in rows]
    neighbours, twins = _neighbours(campaigns, ids, names, *positions)
    features = campaign.target.features.array()
    roots, base = archive_roots.load(settings), settings.public_url
    twin_entries = [t for found in twins.values() for t in found]
    twin_urls = {t["spectrum_id"]: t.pop("access_url") or "" for t in twin_entries}
    urls = [row["access_url"] or "" for row in rows] + list(twin_urls.values())
    views = spectrum_views_of(settings, roots, urls)
    spectra, document["wavelengths"] = views.native, views.native_grids
    wide, document["overview_wavelengths"] = views.overview, views.overview_grids
    twin_spectra = dict(zip(twin_urls, spectra[len(rows) :], strict=True))
    for twin in twin_entries:
        twin["spectrum"] = twin_spectra[twin["spectrum_id"]]
    for i, (row, public) in enumerate(zip(rows, roots.served_rows(rows, base), strict=True)):
        sid = ids[i]
        by_user = votes.get(sid, {})
        answers = relevance.get(sid, {})
        document["rows"].append(
            {
                "id": sid,
                "pubdid": row["pubdid"],
                "designation": row["designation"],
                "object": row["object"],
                "ra": row["ra"],
                "dec": row["dec"],
                "mag": _finite(row["magnitude"]),
                "snr": _finite(row["snr"]),
                "mjd": _finite(row["mjd"]),
                "pipeline_class": row["pipeline_class"],
                "simbad": row["simbad_id"],
                "collection": row["collection"],
                "quality_flag": row["quality_flag"],  # dead-run / cosmic-ray, found at ingest
                "flux_unit": flux_unit(row["collection"] or ""),
                "access_url": public["access_url"],
                "datalink_url": public["datalink_url"],
                "role": row["role"],
                "predicted": row["predicted_class"],
                "p": [row["p_single_peak"], row["p_double_peak"], row["p_absorption"]],
                "entropy": row["entropy"],
                "hou": row["hou_verdict"],
                "mine": by_user.get(request.user),
                "comment": notes.get(sid, {}).get("comment") or "",
                "flag": bool(notes.get(sid, {}).get("flag")),
                "labels": by_user,
                # interesting/boring: mine and everybody's (a label kind of its own)
                "relevance": answers.get(request.user),
                "relevances": answers,
                "surprise": _finite(row.get("surprise")),
                "surprise_rank": row.get("surprise_rank"),
                "like": row.get("like"),  # role similar: the spectrum it is like
                "history": history.get(sid, []),
                "neighbours": neighbours.get(sid, []),
                "twins": twins.get(sid, []),
                "reason": row.get("reason") or ROLE_REASONS.get(row["role"], ""),
                "adapted": encode(features[row["row_index"]]),
                "spectrum": spectra[i],
                "overview": wide[i],
            }
        )
    return document


def _rows(
    settings: Settings,
    campaigns: Campaigns,
    campaign: Campaign,
    number: int,
    request: BatchRequest,
) -> list[dict[str, Any]]:
    """The rows the request asks for: the iteration's selection by role, its surprises
    (role ``surprise``, in their ranked order) or a spectrum's nearest neighbours in the
    network's embedding (role ``similar``, nearest first; the "more like this" index)."""
    engine, cid = campaigns.engine, campaign.campaign_id
    if SURPRISE in request.roles:
        rows = surprise_rows(engine, cid, number, request.limit or MAX_SURPRISES, PAGE_COLUMNS)
        for row in rows:
            row["role"], row["reason"] = (
                SURPRISE,
                (
                    f"surprise #{row['surprise_rank']}: unlike the rest of the pool in the "
                    f"network's embedding (anomaly score {row['surprise']:.3f}); "
                    "i: interesting, b: boring re-ranks the next iteration's surprises"
                ),
            )
        return rows
    if SIMILAR in request.roles:
        from service.vo.similar import neighbours_of  # hnswlib: only when asked

        _, _, found = neighbours_of(
            settings, [request.like or ""], request.k, campaign.name, None, request.user or None
        )
        described = spectrum_rows(engine, cid, number, [f[2] for f in found], PAGE_COLUMNS)
        rows = []
        for like, rank, sid, distance in found:
            rows.append(
                {
                    **described[sid],
                    "role": SIMILAR,
                    "like": like,
                    "reason": f"more like {like}: its neighbour #{rank} in the network's "
                    f"embedding (distance {distance:.2f})",
                }
            )
        return rows
    return candidate_rows(engine, cid, number, list(request.roles), PAGE_COLUMNS)


def _relevance(
    campaigns: Campaigns, campaign: Campaign, ids: list[int]
) -> dict[int, dict[str, str]]:
    """``{spectrum_id: {user: latest interesting/boring answer}}`` in this campaign."""
    wanted = set(ids)
    answers: dict[int, dict[str, str]] = {}
    for sid, user, verdict in campaigns.relevance_per_user(campaign):
        if sid in wanted:
            answers.setdefault(sid, {})[user] = verdict
    return answers


def flux_unit(collection: str) -> str:
    """The flux axis's unit in words, by archive (the files say it inconsistently)."""
    name = collection.lower()
    if "ondrejov" in name or "ondřejov" in name:
        return "counts, ADU"
    if "lamost" in name:  # DR1/DR2 and the demo archive: not flux-calibrated
        return "relative flux"
    return "archive units"


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _votes(campaigns: Campaigns, campaign: Campaign, ids: list[int]) -> dict[int, dict[str, str]]:
    """``{spectrum_id: {user: latest verdict}}`` in this campaign."""
    wanted = set(ids)
    votes: dict[int, dict[str, str]] = {}
    for sid, user, verdict in campaigns.verdicts_per_user(campaign):
        if sid in wanted:
            votes.setdefault(sid, {})[user] = verdict
    return votes


def _history(
    campaigns: Campaigns, campaign: Campaign, ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """Earlier verdicts on the same object: other spectra of the same designation or
    object name, and this spectrum in other campaigns (or as a source-set label)."""
    history: dict[int, list[dict[str, Any]]] = {}
    for sid, verdicts in verdicts_on_same_stars(campaigns.engine, ids).items():
        for hit in verdicts:
            if hit["same_spectrum"] and hit["campaign_id"] == campaign.campaign_id:
                continue  # shown as this campaign's votes
            history.setdefault(sid, []).append(
                {
                    "label": hit["label"],
                    "user": hit["oracle_user"] or "",
                    "campaign": hit["campaign"] or "source set",
                    "iteration": hit["iteration"],
                    "same_spectrum": hit["same_spectrum"],
                    "collection": hit["collection"] or "",
                }
            )
    return history


def _neighbours(
    campaigns: Campaigns,
    ids: list[int],
    names: list[tuple[str | None, str | None]],
    ra: list[Any],
    dec: list[Any],
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, list[dict[str, Any]]]]:
    """Per row, the other sources within :data:`FIBRE_REACH` (light that may share the
    fibre) and the same star's other spectra (within :data:`SAME_STAR`, or the same
    designation or object name: other epochs, the other archive's twin).

    One query over declination bands (indexed), separations in numpy.
    """
    ra_deg = np.array([np.nan if x is None else x for x in ra], float)
    dec_deg = np.array([np.nan if x is None else x for x in dec], float)
    known = np.isfinite(ra_deg) & np.isfinite(dec_deg)
    if not known.any():
        return {}, {}
    found = spectra_near(campaigns.engine, dec_deg[known], FIBRE_REACH / 3600)
    if not found:
        return {}, {}
    other_id = np.array([int(f["spectrum_id"]) for f in found])
    other_ra, other_dec = (
        np.radians(np.array([f[c] for f in found], float)) for c in ("ra", "dec")
    )
    ra0, dec0 = np.radians(ra_deg)[:, None], np.radians(dec_deg)[:, None]
    # haversine: (rows, candidates) separations in arcsec
    hav = (
        np.sin((other_dec - dec0) / 2) ** 2
        + np.cos(dec0) * np.cos(other_dec) * np.sin((other_ra - ra0) / 2) ** 2
    )
    separation = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))) * 3600
    neighbours: dict[int, list[dict[str, Any]]] = {}
    twins: dict[int, list[dict[str, Any]]] = {}
    for i, j in zip(*np.nonzero(separation <= FIBRE_REACH), strict=True):
        if other_id[j] == ids[i]:
            continue
        hit, arcsec = found[j], round(float(separation[i, j]), 2)
        same_name = bool({n for n in names[i] if n} & {hit["designation"], hit["object"]})
        entry = {"spectrum_id": int(other_id[j]), "designation": hit["designation"] or "",
                 "separation_arcsec": arcsec}  # fmt: skip
        if arcsec <= SAME_STAR or same_name:
            entry |= {"collection": hit["collection"] or "", "mjd": _finite(hit["mjd"]),
                      "access_url": hit["access_url"]}  # fmt: skip
            twins.setdefault(ids[i], []).append(entry)
        else:
            neighbours.setdefault(ids[i], []).append(entry)
    return neighbours, twins


@dataclasses.dataclass(frozen=True)
class SpectrumViews:
    """What the page plots of each file: the native H-alpha window (with its 1-sigma
    error) and the wide overview, each entry ``{"grid": g, ...}`` or ``{"error": why}``
    with ``g`` an index into the matching list of base64 wavelength grids (files of
    one archive share a grid, so it is sent once)."""

    native: list[dict[str, Any]]
    native_grids: list[str]
    overview: list[dict[str, Any]]
    overview_grids: list[str]


def spectrum_views_of(settings: Settings, roots: Roots, urls: Sequence[str]) -> SpectrumViews:
    """:func:`spectrum_views` of the files at ``urls``: a tree-ingested ``file://`` one read
    in place, only under an operator's archive root (``roots``); any other from the fetch
    cache, where an ingest left it. A ``file://`` URL refused says why in its entries."""
    cache = Fetcher(settings.home / "cache" / "spectra")
    paths: list[Path] = []
    refused: dict[int, AlvoError] = {}
    for i, url in enumerate(urls):
        try:
            paths.append(
                roots.local_file(url) if url.startswith("file://") else cache.cache_path(url)
            )
        except AlvoError as error:
            refused[i] = error
            paths.append(cache.cache_path(url))  # never there: a placeholder
    views = spectrum_views(paths)
    if not refused:
        return views
    native, overview = list(views.native), list(views.overview)  # the cached views stay as they are
    for i, why in refused.items():
        native[i], overview[i] = {"error": str(why)}, {"error": why.reason.name}
    return dataclasses.replace(views, native=native, overview=overview)


def spectrum_views(paths: Sequence[Path]) -> SpectrumViews:
    """:class:`SpectrumViews` of the files, from one bulk read of :data:`OVERVIEW` each.

    A page reloaded shows the same batch: the views of an unchanged set of files
    (same paths, sizes and modification times) are kept in memory.
    """
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append((str(path), stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamps.append((str(path), -1, -1))
    return _views(tuple(stamps))


@functools.lru_cache(maxsize=16)
def _views(stamps: tuple[tuple[str, int, int], ...]) -> SpectrumViews:
    from service.spectra import read_halpha_windows
    from service.spectra.checks import AIR_INDEX_HALPHA, window_in_medium
    from service.spectra.lines import halpha_equivalent_width
    from service.web.quality import defect_marks

    missing = {"error": "not in the fetch cache"}
    native: list[dict[str, Any]] = [missing for _ in stamps]
    overview: list[dict[str, Any]] = [missing for _ in stamps]
    present = [i for i, (_, size, _) in enumerate(stamps) if size >= 0]
    windows = read_halpha_windows([stamps[i][0] for i in present], OVERVIEW)
    for j, error in windows.failures.items():
        native[present[j]] = {"error": f"{error.reason.name}: {error}"}
        overview[present[j]] = {"error": error.reason.name}
    native_grids: list[str] = []
    overview_grids: list[str] = []
    for group in windows.groups:
        to_vacuum = AIR_INDEX_HALPHA if group.medium == "air" else 1.0
        flux = np.where(group.mask, np.nan, group.flux)
        lo, hi = window_in_medium(WINDOW, group.medium)
        cut = _pixels_between(group.wavelength, lo, hi)
        if cut.stop - cut.start > 1:
            native_grids.append(encode(group.wavelength[cut] * to_vacuum))
            sigma = _sigma(group.ivar[:, cut], group.mask[:, cut])
            marks, dead = defect_marks(
                group.wavelength[cut] * to_vacuum, flux[:, cut], group.mask[:, cut]
            )
            sigma = np.where(dead, np.nan, sigma)  # no ±1σ band across a dead run
            ew, ew_error = halpha_equivalent_width(
                group.wavelength[cut] * to_vacuum, flux[:, cut], sigma
            )
        lam, binned = _binned(group.wavelength, flux, OVERVIEW_PIXELS)
        overview_grids.append(encode(lam * to_vacuum))
        for k, j in enumerate(group.index):
            i = present[int(j)]
            overview[i] = {"grid": len(overview_grids) - 1, "flux": encode(binned[k])}
            if cut.stop - cut.start <= 1:
                native[i] = {"error": "NO_HALPHA_COVERAGE: the window lies outside the spectrum"}
                continue
            native[i] = {
                "medium": group.medium,
                "resolving_power": _finite(group.resolving_power[k]),
                "grid": len(native_grids) - 1,
                "flux": encode(flux[k, cut]),
                "sigma": encode(sigma[k]),
                # EW(Hα) and its 1σ error, Å (negative: emission); None where unmeasurable
                "ew_halpha": [_finite(ew[k]), _finite(ew_error[k])],
                # dead runs [[Å, Å]...] and spikes [Å...] found as at ingest (web/quality.py)
                "defects": marks[k],
            }
    return SpectrumViews(native, native_grids, overview, overview_grids)


def _pixels_between(grid: np.ndarray, lo: float, hi: float) -> slice:
    """From the last pixel at or below ``lo`` to the first at or above ``hi``."""
    i0 = max(int(np.searchsorted(grid, lo, side="right")) - 1, 0)
    i1 = min(int(np.searchsorted(grid, hi, side="left")) + 1, grid.shape[0])
    return slice(i0, max(i0, i1))


def _sigma(ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1-sigma flux error from the inverse variance (NaN where unknown or masked)."""
    with np.errstate(divide="ignore"):
        sigma = 1.0 / np.sqrt(ivar)
    return np.where(mask | ~np.isfinite(sigma) | (ivar <= 0), np.nan, sigma)


def _binned(wavelength: np.ndarray, flux: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of whole groups of pixels, at most ``most`` bins; NaN pixels are left out
    (an all-NaN bin is a gap)."""
    factor = max(1, -(-wavelength.shape[0] // most))
    usable = wavelength.shape[0] // factor * factor
    lam = wavelength[:usable].reshape(-1, factor).mean(axis=1)
    good = np.isfinite(flux[:, :usable])
    summed = np.where(good, flux[:, :usable], 0.0).reshape(good.shape[0], -1, factor)
    count = good.reshape(summed.shape).sum(axis=2)
    return lam, np.where(count > 0, summed.sum(axis=2) / np.maximum(count, 1), np.nan)


def exemplars(campaigns: Campaigns, campaign: Campaign) -> dict[str, Any]:
    """Mean and spread of the adapted vectors of every class in the training set.

    What "single-peak" looks like to the network, to compare a query spectrum with.
    """
    features, y, _ = campaigns.training_set(campaign, CLASSES)
    out: dict[str, Any] = {}
    for index, name in enumerate(CLASSES):
        members = features[y == index]
        members = members[np.isfinite(members).all(axis=1)]
        if len(members):
            out[name] = {
                "n": len(members),
                "mean": encode(members.mean(axis=0)),
                "std": encode(members.std(axis=0)),
            }
    return out


def performance(campaigns: Campaigns, campaign: Campaign) -> dict[str, Any]:
    """Per iteration, the confusion of predicted class x oracle verdict (the metrics
    themselves are in the campaign summary of the API).

    The confusion counts the iteration's query and precision-sample spectra that
    carry a (consensus) verdict now.
    """
    verdicts = campaigns.labels(campaign)
    confusion: dict[int, dict[str, dict[str, int]]] = {}
    for number, sid, predicted, _ in campaigns.batch_predictions(campaign):
        verdict = verdicts.get(sid)
        if verdict is None:
            continue
        cell = confusion.setdefault(number, {}).setdefault(predicted, {})
        cell[verdict] = cell.get(verdict, 0) + 1
    return {
        "campaign": campaign.name,
        "classes": list(CLASSES),
        "verdicts": list(VERDICTS),
        "confusion": {str(k): v for k, v in sorted(confusion.items())},
    }
