"""The words alvo's tables, jobs, pages and VOTables share, defined once.

Every word here is stored: in the ``label``, ``prediction`` and ``model`` tables
that TAP publishes, in the Parquet prediction files and in the VOTables a client
reads back. Code elsewhere imports these names and never spells the strings
itself, so an ADQL query written against one iteration keeps working on the next.

**Classes** -- what the network tells apart around H-alpha, as the original
method did (Škoda, Podsztavek & Tvrdík 2020):

``single-peak``
    H-alpha in emission with one peak: Be/Ae stars seen pole-on, T Tauri stars,
    cataclysmic variables, P Cygni profiles, emission filling an absorption core.
``double-peak``
    H-alpha in emission with two peaks and a central depression: a rotating
    circumstellar disk (Be stars, shell stars) seen at some inclination.
``absorption``
    Everything uninteresting: the photospheric H-alpha absorption of ordinary stars.

The first two are the **target classes**: a spectrum predicted as either is a
*candidate* emission-line object, the thing a campaign is looking for.

**Verdicts** -- what a human oracle may answer on the labelling page: a class, or
``not-sure`` (the profile is ambiguous at this resolution and signal-to-noise)
or ``bad`` (an instrumental artefact -- a cosmic, a dead column, a sky residual --
that may still hide something interesting). The last two are kept as labels and
take the spectrum out of the pool, but are not trained on: they are not classes
of the sky.

**Roles** -- why a pool spectrum of one iteration is in the ``prediction`` table's
selection (``role`` column; NULL: not selected):

``query``
    put to the oracle because the query strategy found the network least sure
    of it (highest entropy among the candidates, by default);
``precision-sample``
    drawn at random among the candidates, so its verdicts estimate how many of
    the candidates are really emission-line objects (the precision);
``padding``
    a spectrum predicted as absorption that fills the batch when too few
    uncertain candidates were left;
``candidate``
    predicted as a target class, not in this batch.

The first three make up the **batch** the oracle labels, in that order.

**Relevance** -- what the oracle may answer about a *surprise* (a spectrum the anomaly
score ranks high, docs/discovery.md): ``interesting`` (worth a closer look: a P Cygni
profile, a binary, an odd object) or ``boring`` (an artefact or nothing new). Kept as
their own label kind (the ``relevance`` table), never trained on: the classes are what
the network learns, relevance is what re-ranks the next iteration's surprises.

**Page roles** -- why a row is on the oracle's page beyond the iteration's selection
(never stored in ``prediction.role``): ``surprise`` (among the iteration's top-ranked
surprises) and ``similar`` (a nearest neighbour, in the network's embedding, of a
spectrum the oracle asked "more like this" about, key ``m``).

**The Hou et al. (2016) rule's verdict** (``hou_verdict`` column): ``emission``
when the rule-based LAMOST search would call the adapted spectrum an H-alpha
emitter, ``none`` otherwise -- a second opinion beside the network's.

**The feature grid** -- every spectrum, whatever its instrument, becomes
:data:`FEATURE_PIXELS` fluxes at ``np.linspace(6519, 6732, 140)`` Å in vacuum
(:meth:`service.adapt.AdaptConfig.grid`), the original method's grid. The window
holds H-alpha (6564.6 Å in vacuum) with ~45 Å of continuum on its blue side and
~170 Å on its red side (He I 6678 included), and lies inside both the Ondřejov
CCD700 spectra (~6250-6770 Å, air) and LAMOST's (3690-9100 Å). Its step,
213 Å / 139 ≈ 1.532 Å, matches LAMOST's native pixel at H-alpha (≈ 1.51 Å,
R ≈ 1800) to 1.5 %, so the target spectra are resampled rather than invented,
and the source spectra are blurred to that resolution first. 140 is the reference
network's input width (``Input (140, 1)``, 2.5 M parameters); a model trained on
features of another grid is refused (``MODEL_ADAPTATION_MISMATCH``).
"""

from __future__ import annotations

from typing import Final

# --- classes and verdicts -----------------------------------------------------------------------
SINGLE_PEAK: Final = "single-peak"
DOUBLE_PEAK: Final = "double-peak"
ABSORPTION: Final = "absorption"
#: The network's classes, in the order of its outputs and of the ``p_*`` columns.
CLASSES: Final[tuple[str, ...]] = (SINGLE_PEAK, DOUBLE_PEAK, ABSORPTION)
#: Classes whose predicted members are the candidates (the original's "positives").
TARGET_CLASSES: Final[tuple[str, ...]] = (SINGLE_PEAK, DOUBLE_PEAK)

NOT_SURE: Final = "not-sure"
BAD: Final = "bad"
#: Verdicts an oracle may give besides the classes (kept, never trained on).
EXTRA_VERDICTS: Final[tuple[str, ...]] = (NOT_SURE, BAD)
#: Every verdict an oracle may give, in the order of the page's keys 1-5.
VERDICTS: Final[tuple[str, ...]] = (*CLASSES, *EXTRA_VERDICTS)

INTERESTING: Final = "interesting"
BORING: Final = "boring"
#: The oracle's answers on a surprise, in the order of the page's keys i, b (kept apart
#: from the verdicts above: never trained on).
RELEVANCE_VERDICTS: Final[tuple[str, ...]] = (INTERESTING, BORING)

# --- roles of a pool spectrum in one iteration --------------------------------------------------
QUERY: Final = "query"
PRECISION_SAMPLE: Final = "precision-sample"
PADDING: Final = "padding"
CANDIDATE: Final = "candidate"
#: Roles of the spectra put to the oracle, in the order the page and the VOTable show them.
BATCH_ROLES: Final[tuple[str, ...]] = (QUERY, PRECISION_SAMPLE, PADDING)
#: Every value of the ``prediction.role`` column (NULL aside).
ROLES: Final[tuple[str, ...]] = (*BATCH_ROLES, CANDIDATE)

SURPRISE: Final = "surprise"
SIMILAR: Final = "similar"
#: Roles of rows the oracle's page shows beyond the iteration's selection.
PAGE_ROLES: Final[tuple[str, ...]] = (SURPRISE, SIMILAR)

# --- the Hou et al. (2016) rule ------------------------------------------------------------------
HOU_EMISSION: Final = "emission"
HOU_NONE: Final = "none"

# --- who scored a prediction row (``prediction.scored_by``; service.learn.cascade) ----
#: the cheap gate alone (it was sure of absorption; the reference net was skipped)
SCORED_BY_GATE: Final = "gate"
#: the reference net (every row when the cascade is off or its audit failed)
SCORED_BY_REFERENCE: Final = "reference"
SCORERS: Final[tuple[str, ...]] = (SCORED_BY_GATE, SCORED_BY_REFERENCE)

# --- the feature grid ---------------------------------------------------------------------------
#: First and last wavelength of the feature vector, Å in vacuum.
#: ``spectrum.position_flag`` of a spectrum whose header gave a position no sky has
#: (Dec outside [-90, 90], RA outside [0, 360)): its ``ra``/``dec`` are stored NULL.
POSITION_OUT_OF_RANGE: Final = "header-out-of-range"

FEATURE_WINDOW: Final[tuple[float, float]] = (6519.0, 6732.0)
#: Fluxes per feature vector, evenly spaced over :data:`FEATURE_WINDOW` (ends included).
FEATURE_PIXELS: Final = 140
