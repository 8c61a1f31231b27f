"""A small campaign world for the oracle page tests: datasets, spectrum files, iteration 0.

The pool's spectra are LAMOST DR2-shaped FITS files (log-linear vacuum grid)
with single-peak, double-peak or absorption H-alpha profiles, written into the
fetch cache exactly where an ingest would have left them, and adapted by
``service.adapt.adapt_array`` as an ingest would. Iteration 0's predictions
are written directly: BATCH query rows, a precision sample and candidates.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from service.adapt import adapt_array
from service.net.fetch import Fetcher
from service.settings import Settings
from service.store import schema
from service.store.campaigns import Campaigns, Verdict
from service.store.datasets import Datasets
from service.vocabulary import CLASSES

COEFF0, COEFF1, NPIX = 3.5682, 1e-4, 3909
HALPHA = 6564.61


@dataclasses.dataclass
class World:
    settings: Settings
    campaign: str
    kinds: np.ndarray  # true class index of each pool row
    query_ids: list[int]  # spectrum ids of the query batch, as the page orders them
    sample_ids: list[int]
    missing_file: int  # spectrum id whose file is not in the fetch cache
    neighbour: int  # spectrum id 2" from the query batch's fourth spectrum
    twin: int  # spectrum id of the fifth query star's spectrum in another archive (0")


def lamost_profiles(kinds: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength (p,), flux (n, p)) of H-alpha profiles of the given class indices."""
    wavelength = 10 ** (COEFF0 + COEFF1 * np.arange(NPIX))
    x = (wavelength - HALPHA)[None, :]
    n = len(kinds)
    strength = rng.uniform(0.4, 2.5, (n, 1))
    width = rng.uniform(2.0, 4.5, (n, 1))
    split = rng.uniform(3.0, 6.0, (n, 1))
    single = strength * np.exp(-0.5 * (x / width) ** 2)
    double = strength * (
        np.exp(-0.5 * ((x - split) / (0.6 * width)) ** 2)
        + np.exp(-0.5 * ((x + split) / (0.6 * width)) ** 2)
    )
    absorption = -0.45 * np.exp(-0.5 * (x / (2.5 * width)) ** 2)
    line = np.choose(kinds[:, None], [single, double, absorption])
    continuum = 100.0 * (1 + 2e-4 * (wavelength[None, :] - 6000))
    snr = rng.uniform(15, 80, (n, 1))
    flux = continuum * (1 + line) * (1 + rng.normal(0, 1, (n, NPIX)) / snr)
    return wavelength, flux


def write_lamost(path: Path, flux: np.ndarray, designation: str, ra: float, dec: float) -> None:
    wavelength = 10 ** (COEFF0 + COEFF1 * np.arange(NPIX))
    ivar = np.full(NPIX, 0.01)
    data = np.vstack([flux, ivar, wavelength, np.zeros(NPIX), np.zeros(NPIX)]).astype(np.float32)
    hdu = fits.PrimaryHDU(data)
    hdu.header.update(
        {"COEFF0": COEFF0, "COEFF1": COEFF1, "DESIG": designation, "RA": ra, "DEC": dec,
         "CLASS": "STAR", "SUBCLASS": "B9", "OBSID": 1, "MJD": 56000, "VACUUM": True,
         "EXTEN0": "Flux Inverse Wavelength Andmask Ormask"}
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path, overwrite=True)


def add_source_set(datasets: Datasets, rng: np.random.Generator, n: int = 240) -> None:
    """Dataset ``src``: ``n`` labelled LAMOST-like profiles, the campaigns' source set."""
    source_kinds = rng.choice(3, n, p=[0.4, 0.15, 0.45])
    source = datasets.open_or_create("src", "source")
    wavelength, flux = lamost_profiles(source_kinds, rng)
    datasets.append(
        source,
        adapt_array(wavelength, flux, medium="vacuum", resolving_power=1800.0).features,
        {"pubdid": [f"ivo://t/src?{i}" for i in range(len(source_kinds))]},
        [CLASSES[k] for k in source_kinds],
    )


def record_iteration(
    campaigns: Campaigns,
    campaign: Any,
    ids: list[int],
    p: np.ndarray,
    roles: np.ndarray,
    hou: np.ndarray,
    n_candidates: int | None = None,
) -> None:
    """Iteration 0 of ``campaign`` as an iterate job leaves it: predictions (class
    probabilities ``p``, (n, 3), and batch roles of spectra ``ids``) and its row."""
    n = len(ids)
    entropy = -(p * np.log(p)).sum(1)
    with campaigns.engine.begin() as conn:
        schema.bulk_insert(
            conn,
            schema.prediction,
            {
                "spectrum_id": np.array(ids),
                "campaign_id": np.full(n, campaign.campaign_id),
                "iteration": np.zeros(n, int),
                "predicted_class": np.array(CLASSES)[p.argmax(1)],
                "p_single_peak": p[:, 0],
                "p_double_peak": p[:, 1],
                "p_absorption": p[:, 2],
                "entropy": entropy,
                "hou_verdict": hou,
                "role": roles,
            },
        )
        conn.execute(
            schema.iteration.insert().values(
                campaign_id=campaign.campaign_id, number=0, n_labels=0,
                n_candidates=n_candidates, started=schema.utcnow(), finished=schema.utcnow(),
            )
        )  # fmt: skip


def build_world(
    home: Path, port: int, n_pool: int = 240, batch: int = 100, sample: int = 30, seed: int = 7
) -> World:
    settings = Settings(home=home, port=port, demo_archive_size=0)
    rng = np.random.default_rng(seed)
    datasets = Datasets(settings)
    add_source_set(datasets, rng)
    kinds = rng.choice(3, n_pool, p=[0.45, 0.25, 0.30])
    wavelength, flux = lamost_profiles(kinds, rng)
    features = adapt_array(wavelength, flux, medium="vacuum", resolving_power=1800.0).features
    # iteration 0's predictions: noisy probabilities that mostly point at the truth
    logits = rng.normal(0, 1.0, (n_pool, 3)) + 1.5 * np.eye(3)[kinds]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    entropy = -(p * np.log(p)).sum(1)
    predicted = p.argmax(1)
    emission = np.flatnonzero(predicted < 2)
    order = emission[np.argsort(-entropy[emission])]
    query, rest = order[:batch], order[batch:]
    precision = rng.choice(rest, min(sample, len(rest)), replace=False)
    roles = np.full(n_pool, None, dtype=object)
    roles[emission] = "candidate"
    roles[precision] = "precision-sample"
    roles[query] = "query"
    ra, dec = rng.uniform(0, 360, n_pool), rng.uniform(-5, 60, n_pool)
    outside = np.setdiff1d(np.arange(n_pool), np.concatenate([query, precision]))
    neighbour = int(outside[0])  # 2" north of a query star, not in the batch itself
    ra[neighbour], dec[neighbour] = ra[query[3]], dec[query[3]] + 2 / 3600
    designations = [f"J{r:08.4f}{d:+08.4f}" for r, d in zip(ra / 15, dec, strict=True)]
    designations[query[1]] = designations[query[0]]  # a second observation of one star
    urls = [f"http://archive.example/lamost/spec{i:05d}.fits" for i in range(n_pool)]
    cache = Fetcher(home / "cache" / "spectra")
    missing = int(precision[-1])  # never fetched: the page says so
    for i in range(n_pool):
        if i == missing:
            continue
        write_lamost(cache.cache_path(urls[i]), flux[i], designations[i], ra[i], dec[i])
    pool = datasets.open_or_create("pool", "target", "lamost-dr2")
    ids = datasets.append(
        pool,
        features,
        {
            "pubdid": [f"ivo://t/pool?{i}" for i in range(n_pool)],
            "designation": designations,
            "ra": ra.tolist(),
            "dec": dec.tolist(),
            "snr": rng.uniform(15, 80, n_pool).tolist(),
            "magnitude": rng.uniform(11, 16, n_pool).tolist(),
            "pipeline_class": ["STAR"] * n_pool,
            "access_url": urls,
            "collection": ["lamost-dr2"] * n_pool,
            "simbad_id": ["* gam Cas" if i == query[2] else None for i in range(n_pool)],
        },
    )
    # the fifth query star observed by another archive: same position, another name
    twin_url = "http://archive.example/other/twin.fits"
    twin_flux = lamost_profiles(kinds[query[4:5]], rng)[1][0]
    write_lamost(cache.cache_path(twin_url), twin_flux, "HD 1", ra[query[4]], dec[query[4]])
    other = datasets.open_or_create("other", "source", "other")
    (twin,) = datasets.append(
        other,
        features[query[4:5]],
        {"pubdid": ["ivo://t/other?twin"], "designation": ["HD 1"], "ra": [ra[query[4]]],
         "dec": [dec[query[4]]], "mjd": [55000.5], "access_url": [twin_url],
         "collection": ["other"]},
        [CLASSES[kinds[query[4]]]],
    )  # fmt: skip
    campaigns = Campaigns(settings)
    campaign = campaigns.create("be", "src", "pool", batch, "Be stars in LAMOST DR2")
    record_iteration(campaigns, campaign, ids, p, roles, np.where(kinds < 2, "emission", "none"))
    # another oracle already judged two query spectra (the second one wrongly: a conflict
    # waits for whoever labels it right); the two are observations of one star
    ben = [CLASSES[kinds[query[0]]], CLASSES[(kinds[query[1]] + 1) % 3]]
    campaigns.add_labels(
        campaign,
        [Verdict(label=verdict, spectrum_id=ids[i], user="ben", source="page", iteration=0)
         for i, verdict in zip(query[:2], ben, strict=True)],
    )  # fmt: skip
    query_ids = [ids[i] for i in sorted(query, key=lambda i: -entropy[i])]
    sample_ids = [ids[i] for i in precision]
    return World(
        settings, "be", kinds, query_ids, sample_ids, ids[missing], ids[neighbour], int(twin)
    )


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser); skips without it."""
    import pytest

    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (tests/peers/install-debian-deps.sh)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def served_world(home: Path, **world: Any) -> Iterator[tuple[str, World]]:
    """A world behind a real uvicorn with its job service running; yields (base URL, world)."""
    from service.app import create_app
    from tests.vo_fixture import free_port, live_server

    port = free_port()
    built = build_world(home, port, **world)
    with live_server(create_app(built.settings), port, lifespan="on") as url:
        yield url, built


def open_page(context: Any, url: str) -> Any:
    """A new page of ``context`` at ``url``, once its script says it is ready; the page's
    script errors collect in ``page.errors`` (a test asserts there are none)."""
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page
