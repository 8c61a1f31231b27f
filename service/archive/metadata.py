"""Who, where and when: positions, epochs, identifiers and names of simulated rows.

LAMOST rows are grouped in plates of 4000 fibres (16 spectrographs × 250): a
plate has a centre in the survey footprint, a night and a plan name, and its
stars lie within 2.5° of the centre. Ondrejov rows are single pointings at
bright stars near the Galactic plane. A few per cent of Ondrejov rows and a few
per mille of LAMOST rows are observations of *shared stars* (one list per seed),
so some stars are in both archives, at different epochs — with profiles drawn
afresh each time, as Be stars change between epochs.
"""

from __future__ import annotations

import functools

import numpy as np

from service.archive import sky
from service.archive.classes import EMISSION_FINE
from service.vocabulary import ABSORPTION

N_SHARED = 400
SHARED_FRACTION = {"ondrejov": 0.03, "lamost": 0.002}
PUBDID_PREFIX = "ivo://alvo.demo/"
PLATE_STREAM = 99
SHARED_STREAM = 98


def pubdids(collection: str, obsids: list[str] | np.ndarray) -> np.ndarray:
    """Publisher DIDs ``ivo://alvo.demo/{collection}?{obsid}``."""
    return np.array([f"{PUBDID_PREFIX}{collection}?{o}" for o in obsids])


@functools.cache
def shared_stars(seed: int) -> dict[str, np.ndarray]:
    """The stars both archives observe: positions in both footprints, near the plane.

    Most are Be stars (``is_be``): hot, fast rotators whose disk comes and goes,
    so each epoch draws its profile afresh (and may find the disk gone).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, SHARED_STREAM]))
    ra, dec = sky.footprint(rng, N_SHARED, (-10.0, 60.0), 5.0, 0.7)
    hd = rng.integers(1000, 360000, N_SHARED)
    return {
        "ra": ra,
        "dec": dec,
        "object": np.array([f"HD {h}" for h in hd.tolist()]),
        "is_be": rng.random(N_SHARED) < 0.7,
        "teff": np.exp(rng.uniform(np.log(10500.0), np.log(28000.0), N_SHARED)),
        "vsini": rng.uniform(150.0, 400.0, N_SHARED),
        "ebv": rng.exponential(0.2, N_SHARED),
    }


def draw_shared(
    rng: np.random.Generator, fine: np.ndarray, collection: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(shared, star index) per row: which rows observe a shared star, and which one.

    Only compatible stars are chosen, so the class priors stay exact: an emission
    row observes a Be star; an absorption row any shared star (a Be star whose
    disk has gone, or a normal one); bad and unknown rows none.
    """
    n = int(fine.shape[0])
    stars = shared_stars(seed)
    be = np.flatnonzero(stars["is_be"])
    shared = rng.random(n) < SHARED_FRACTION[collection]
    any_star = rng.integers(0, N_SHARED, n)
    be_star = be[rng.integers(0, be.size, n)]
    emission = np.isin(fine, EMISSION_FINE)
    shared &= emission | (fine == ABSORPTION)
    return shared, np.where(emission, be_star, any_star)


def _plates(seed: int, code: int, plates: np.ndarray) -> dict[str, np.ndarray]:
    """Centre, night and plan name of each plate index (each from its own seed)."""
    out: dict[str, list] = {"ra": [], "dec": [], "mjd": [], "planid": []}
    for plate in plates.tolist():
        rng = np.random.default_rng(np.random.SeedSequence([seed, code, PLATE_STREAM, plate]))
        ra, dec = sky.footprint(rng, 1, sky.LAMOST_DEC, 12.0, 1.0)
        night = sky.LAMOST_FIRST_MJD + int(rng.integers(0, sky.LAMOST_NIGHTS))
        sign = "N" if dec[0] >= 0 else "S"
        out["ra"].append(ra[0])
        out["dec"].append(dec[0])
        out["mjd"].append(night + 0.55 + 0.25 * rng.random())  # local night, in UT
        out["planid"].append(f"GAC{int(ra[0]):03d}{sign}{int(abs(dec[0])):02d}V{plate % 9 + 1}")
    return {k: np.array(v) for k, v in out.items()}


def observation_metadata(
    rng: np.random.Generator,
    rows: np.ndarray,
    collection: str,
    seed: int,
    code: int,
    shared: np.ndarray,
    which: np.ndarray,
) -> dict[str, np.ndarray]:
    """(n,) columns: ra, dec (deg ICRS), mjd, obsid, pubdid, designation, object, shared.

    LAMOST adds planid, lmjd, spid, fiberid. Draws from ``rng`` in a fixed order.
    """
    n = int(rows.shape[0])
    radius = sky.PLATE_RADIUS * np.sqrt(rng.random(n))
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    jitter = rng.uniform(0.0, 0.3, n)
    hd = rng.integers(1000, 360000, n)
    out: dict[str, np.ndarray] = {}
    if collection == "lamost":
        plate_index = rows // sky.SPECTRA_PER_PLATE
        unique, inverse = np.unique(plate_index, return_inverse=True)
        plates = _plates(seed, code, unique)
        ra, dec = sky.offset(plates["ra"][inverse], plates["dec"][inverse], radius, angle)
        mjd = plates["mjd"][inverse]
        within = rows % sky.SPECTRA_PER_PLATE
        out["planid"] = plates["planid"][inverse]
        out["lmjd"] = np.floor(mjd + 8.0 / 24.0).astype(np.int64)  # Beijing local day
        out["spid"] = within // sky.FIBRES_PER_SPECTROGRAPH + 1
        out["fiberid"] = within % sky.FIBRES_PER_SPECTROGRAPH + 1
        obsid = (sky.OBSID_BASE + rows).astype(str)
        objects = np.array([f"X{r:011d}" for r in rows.tolist()])
    else:
        ra, dec = sky.footprint(rng, n, sky.ONDREJOV_DEC, 8.0, 0.3)
        night, sequence = sky.ondrejov_night(rows)
        mjd = sky.ONDREJOV_FIRST_MJD + night + 0.8 + jitter
        obsid = np.array(sky.ondrejov_obsid(mjd, sequence))
        objects = np.array([f"HD {h}" for h in hd.tolist()])
    stars = shared_stars(seed)
    ra = np.where(shared, stars["ra"][which], ra)
    dec = np.where(shared, stars["dec"][which], dec)
    objects = np.where(shared, stars["object"][which], objects)
    out.update(
        {
            "ra": ra,
            "dec": dec,
            "mjd": mjd,
            "obsid": obsid,
            "pubdid": pubdids(collection, obsid),
            "designation": np.array(sky.designation(ra, dec)),
            "object": objects,
            "shared": shared,
        }
    )
    return out
