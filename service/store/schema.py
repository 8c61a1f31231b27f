"""The result tables of alvo (SQLAlchemy 2 Core), shaped for ADQL querying over TAP.

One :data:`metadata` holds every table; each column carries its VO metadata in
``Column.info`` -- ``description``, ``ucd``, ``unit`` (VOUnit), optionally
``utype``, ``xtype`` and ``principal`` -- so TAP_SCHEMA, ``/tap/tables`` and the
VOTables written from these tables all read the same words from this one place
(:func:`column_meta`).

The same tables work on the embedded SQLite default and on PostgreSQL (with
pgSphere for ADQL geometry, whose spatial index :func:`create_all` adds).
Positions are ICRS degrees; times are MJD (UTC days) where they describe an
observation and UTC timestamps where they describe our own bookkeeping.

Who writes what (the ingest/train/iterate jobs of ``service/jobs``)::

    from service.store import schema
    engine = sqlalchemy.create_engine(settings.sqlalchemy_url)
    schema.create_all(engine)                        # idempotent, at start
    with engine.begin() as conn:
        ds = conn.execute(schema.dataset.insert().values(name="lamost-dr2", ...)
                          ).inserted_primary_key[0]
        conn.execute(schema.spectrum.insert(), [{"dataset_id": ds, "row_index": i, ...}, ...])

``prediction`` has one row per spectrum, campaign and iteration; ``label`` one
row per oracle verdict (the latest per spectrum and campaign wins);
``iteration`` one row per active-learning step with its metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from service.store import migrations
from service.vocabulary import (
    CLASSES,
    RELEVANCE_VERDICTS,
    ROLES,
    SCORERS,
    TARGET_CLASSES,
    VERDICTS,
)

#: The ADQL schema the result tables are published under (``alvo.prediction``).
SCHEMA = "alvo"

#: Longest free-text comment a label keeps (characters); longer is COMMENT_TOO_LONG.
MAX_COMMENT = 1000
LABEL_SOURCES = ("page", "votable", "csv", "samp", "api", "ingest")
DOMAINS = ("source", "target")

metadata = sa.MetaData()


def col(
    name: str,
    type_: Any,
    description: str,
    ucd: str | None = None,
    unit: str | None = None,
    *args: Any,
    utype: str | None = None,
    principal: bool = False,
    xtype: str | None = None,
    **kwargs: Any,
) -> sa.Column:
    """A column with its VO metadata (description, UCD, VOUnit unit...) in ``info``."""
    info: dict[str, Any] = {"description": description, "ucd": ucd, "unit": unit, "utype": utype}
    info.update({"principal": principal, "xtype": xtype})
    return sa.Column(name, type_, *args, info=info, comment=description, **kwargs)


def _id(name: str, what: str) -> sa.Column:
    return col(
        name,
        sa.Integer,
        f"Identifier of the {what}",
        "meta.id;meta.main",
        None,
        primary_key=True,
        autoincrement=True,
        principal=True,
    )


def _ref(name: str, target: str, what: str, nullable: bool = False) -> sa.Column:
    return col(
        name,
        sa.Integer,
        f"Identifier of the {what} (see {SCHEMA}.{target.split('.')[0]})",
        "meta.id",
        None,
        sa.ForeignKey(target),
        nullable=nullable,
        principal=True,
    )


_POS_RA = ("pos.eq.ra;meta.main", "deg")
_POS_DEC = ("pos.eq.dec;meta.main", "deg")
_PROB = "stat.probability"

campaign = sa.Table(
    "campaign",
    metadata,
    _id("campaign_id", "active-learning campaign"),
    col(
        "name",
        sa.String(128),
        "Name of the campaign",
        "meta.id",
        None,
        unique=True,
        nullable=False,
        principal=True,
    ),
    col("description", sa.Text, "What the campaign looks for, in words", "meta.note"),
    col(
        "source_dataset_id",
        sa.Integer,
        "Labelled source-domain dataset the CNN starts from",
        "meta.id",
    ),
    col("target_dataset_id", sa.Integer, "Target-domain pool the oracle labels from", "meta.id"),
    col("batch_size", sa.Integer, "Spectra put to the oracle per iteration", "meta.number"),
    col(
        "created",
        sa.DateTime,
        "When the campaign was created (UTC)",
        "time.creation",
        xtype="timestamp",
    ),
    col(
        "owner",
        sa.String(255),
        "User who created the campaign and may run its iterations (null: anyone)",
        "meta.id;meta.curation",
    ),
    col(
        "oracles",
        sa.Text,
        "Other users who may label the campaign, comma-separated ('*': every signed-in user)",
        "meta.id;meta.curation",
    ),
    comment="Active-learning campaigns: one source set, one target pool, one oracle.",
)

dataset = sa.Table(
    "dataset",
    metadata,
    _id("dataset_id", "dataset"),
    col(
        "name",
        sa.String(128),
        "Name of the dataset",
        "meta.id",
        None,
        unique=True,
        nullable=False,
        principal=True,
    ),
    col("collection", sa.String(128), "Archive collection the spectra came from", "meta.id"),
    col(
        "learning_domain",
        sa.String(16),
        "source (labelled instrument) or target (pool to search)",
        "meta.code.class",
        principal=True,
    ),
    col(
        "feature_path",
        sa.Text,
        "Feature store (float32 .npy, row i = spectrum i), relative to the service's home",
        "meta.ref",
    ),
    col("n_spectra", sa.Integer, "Number of spectra ingested", "meta.number", principal=True),
    col(
        "n_failed", sa.Integer, "Number of spectra that could not be read or adapted", "meta.number"
    ),
    col(
        "created",
        sa.DateTime,
        "When the dataset was ingested (UTC)",
        "time.creation",
        xtype="timestamp",
    ),
    col(
        "owner",
        sa.String(255),
        "User who created the dataset and may add to it (null: anyone)",
        "meta.id;meta.curation",
    ),
    # --- added by revision 0010 (issue 24), so at the end
    col(
        "private",
        sa.Boolean,
        "True: the dataset's rows, and those of campaigns, labels and predictions built on "
        "it, are shown over TAP only to its owner and readers",
        "meta.code",
    ),
    col(
        "readers",
        sa.Text,
        "Users the owner invited to read a private dataset, comma-separated",
        "meta.id;meta.curation",
    ),
    comment="Named sets of ingested spectra, each with a feature store next to the tables.",
)

spectrum = sa.Table(
    "spectrum",
    metadata,
    _id("spectrum_id", "spectrum"),
    _ref("dataset_id", "dataset.dataset_id", "dataset holding the spectrum"),
    col(
        "row_index",
        sa.Integer,
        "Row of the spectrum in its dataset's feature store",
        "meta.number",
        nullable=False,
    ),
    col(
        "pubdid",
        sa.String(256),
        "Publisher dataset identifier (SSA PUBDID, DataLink ID)",
        "meta.ref.ivoid",
        principal=True,
    ),
    col("obsid", sa.String(128), "Observation identifier of the archive", "meta.id"),
    col(
        "designation",
        sa.String(64),
        "Archive designation (e.g. LAMOST Jhhmmss.ss+ddmmss.s)",
        "meta.id",
        principal=True,
    ),
    col("object", sa.String(128), "Target name given by the observer", "meta.id"),
    col("ra", sa.Float, "Right ascension (ICRS)", *_POS_RA, principal=True),
    col("dec", sa.Float, "Declination (ICRS)", *_POS_DEC, principal=True),
    col("mjd", sa.Float, "Mid-exposure time, MJD (UTC)", "time.epoch;obs", "d"),
    col("snr", sa.Float, "Signal-to-noise ratio near H-alpha", "stat.snr", principal=True),
    col("pipeline_class", sa.String(32), "Class given by the archive's pipeline", "src.class"),
    col("access_url", sa.Text, "URL of the spectrum file", "meta.ref.url"),
    col("datalink_id", sa.String(256), "ID to pass to the DataLink service", "meta.id"),
    col("datalink_url", sa.Text, "DataLink {links} URL of the spectrum", "meta.ref.url"),
    col(
        "learning_domain",
        sa.String(16),
        "source (labelled instrument) or target (pool)",
        "meta.code.class",
    ),
    col("collection", sa.String(128), "Archive collection", "meta.id"),
    col("magnitude", sa.Float, "Brightness of the object (r band where known)", "phot.mag", "mag"),
    col(
        "simbad_id",
        sa.String(128),
        "SIMBAD main identifier from a cross-match (if any)",
        "meta.id.cross",
    ),
    col(  # last: migration 0007 added it
        "position_flag",
        sa.String(32),
        "Why ra and dec are NULL: header-out-of-range (the file's header gave Dec outside "
        "[-90, 90] or RA outside [0, 360)); NULL when the position is as read",
        "meta.code.qual;pos",
    ),
    col(  # migration 0012 added it
        "quality_flag",
        sa.String(32),
        "Detector defects found at ingest in the H-alpha window, comma-separated: "
        "dead-run (a run of >= 4 identical or missing pixels, masked and interpolated "
        "over) | cosmic-ray (a 1-2 pixel spike, masked and interpolated over); NULL when "
        "clean or ingested before the check",
        "meta.code.qual",
    ),
    sa.UniqueConstraint("dataset_id", "row_index"),
    sa.Index("ix_spectrum_dec_ra", "dec", "ra"),
    sa.Index("ix_spectrum_pubdid", "pubdid"),
    comment="One row per ingested spectrum: identifiers, position, quality and access.",
)

#: What a spectrum is known by in its dataset: its publisher DID, else its access URL.
spectrum_key = sa.func.coalesce(
    sa.func.nullif(spectrum.c.pubdid, sa.literal_column("''")), spectrum.c.access_url
)
#: One spectrum per key in a dataset: what makes re-running an ingest add nothing
#: (see :mod:`service.store.datasets`).
spectrum_identity = sa.Index(
    "ux_spectrum_identity", spectrum.c.dataset_id, spectrum_key, unique=True
)

label = sa.Table(
    "label",
    metadata,
    _id("label_id", "label"),
    _ref("spectrum_id", "spectrum.spectrum_id", "spectrum labelled"),
    _ref("campaign_id", "campaign.campaign_id", "campaign", nullable=True),
    col(
        "label",
        sa.String(16),
        "Oracle verdict: " + " | ".join(VERDICTS),
        "meta.code.class",
        nullable=False,
        principal=True,
    ),
    col("oracle_user", sa.String(128), "Who gave the verdict", "meta.id;meta.curation"),
    col(
        "labelled",
        sa.DateTime,
        "When the verdict was given (UTC)",
        "time.processing",
        xtype="timestamp",
    ),
    col("iteration", sa.Integer, "Iteration whose query batch asked for it", "meta.number"),
    col("source", sa.String(16), "How the verdict came: " + " | ".join(LABEL_SOURCES), "meta.code"),
    col(
        "comment",
        sa.String(MAX_COMMENT),
        f"The oracle's free-text note on the spectrum (at most {MAX_COMMENT} characters)",
        "meta.note",
    ),
    col(
        "flag",
        sa.Boolean,
        "True when the oracle flagged the spectrum for a second look",
        "meta.code.qual",
    ),
    sa.Index("ix_label_spectrum", "campaign_id", "spectrum_id"),
    comment="Oracle verdicts on spectra, one row per verdict given.",
)

#: The oracle's answers on surprises: a label kind of its own, apart from ``label`` so
#: that nothing that reads the training verdicts can mix them in (docs/discovery.md).
relevance = sa.Table(
    "relevance",
    metadata,
    _id("relevance_id", "relevance answer"),
    _ref("spectrum_id", "spectrum.spectrum_id", "spectrum judged"),
    _ref("campaign_id", "campaign.campaign_id", "campaign"),
    col(
        "verdict",
        sa.String(16),
        "Oracle's answer on a surprise: " + " | ".join(RELEVANCE_VERDICTS),
        "meta.code",
        nullable=False,
        principal=True,
    ),
    col("oracle_user", sa.String(128), "Who answered", "meta.id;meta.curation"),
    col(
        "answered",
        sa.DateTime,
        "When the answer was given (UTC)",
        "time.processing",
        xtype="timestamp",
    ),
    col("iteration", sa.Integer, "Iteration whose surprises were shown", "meta.number"),
    sa.Index("ix_relevance_spectrum", "campaign_id", "spectrum_id"),
    comment=(
        "Oracle answers on surprises (interesting or boring), one row per answer; never"
        " trained on, they re-rank the next iteration's surprises."
    ),
)

model = sa.Table(
    "model",
    metadata,
    _id("model_id", "trained model"),
    _ref("campaign_id", "campaign.campaign_id", "campaign", nullable=True),
    col(
        "iteration", sa.Integer, "Iteration the model was trained in", "meta.number", principal=True
    ),
    col(
        "path",
        sa.Text,
        "Keras model file, relative to the service's home directory (no server path)",
        "meta.ref",
    ),
    col(
        "adaptation", sa.String(64), "Fingerprint of the domain-adaptation configuration", "meta.id"
    ),
    col(
        "classes",
        sa.String(256),
        "Output classes, comma-separated in output order",
        "meta.code.class",
    ),
    col("metrics", sa.Text, "Training metrics (JSON: loss, accuracy per epoch...)", "meta.note"),
    col("created", sa.DateTime, "When training finished (UTC)", "time.creation", xtype="timestamp"),
    comment="Trained CNN models, one per campaign iteration (or per train job).",
)

#: Partial indexes of ``prediction``: (name, columns, rows held, as SQL both dialects
#: read). Each holds the rows of one kind only (hundreds of a 4.1 M-row iteration):
#: the batch put before the oracle, the labelled training rows, the ranked surprises.
#: A query uses one where its WHERE says the same (``role IN (...)`` implies
#: ``role IS NOT NULL``; ``labelled`` is compared to true as SQLAlchemy writes it).
#: Each constrains more of its queries' columns than any full index does: SQLite,
#: before it has statistics (a new or migrated database, until :func:`bulk_load`'s
#: ANALYZE), ranks indexes by that, and a tie goes by the order the indexes were
#: built in, which :func:`bulk_load` does not fix (tests/test_store_plans.py).
PREDICTION_SUBSETS = (
    ("ix_prediction_batch", ("campaign_id", "role", "iteration"), "role IS NOT NULL"),
    (
        "ix_prediction_labelled",
        ("campaign_id", "iteration", "labelled", "predicted_class"),
        "labelled = true",
    ),
    (
        "ix_prediction_surprise",
        ("campaign_id", "iteration", "surprise_rank"),
        "surprise_rank IS NOT NULL",
    ),
)


def partial_index(name: str, columns: Sequence[str], where: str) -> sa.Index:
    """An index of the rows ``where`` holds, on SQLite and PostgreSQL alike (SQLite
    matches the query's ``labelled = 1`` term to the index's literally, so ``true``
    is written as SQLAlchemy writes it there)."""
    sqlite = where.replace("= true", "= 1")
    return sa.Index(name, *columns, sqlite_where=sa.text(sqlite), postgresql_where=sa.text(where))


prediction = sa.Table(
    "prediction",
    metadata,
    _id("prediction_id", "prediction"),
    _ref("spectrum_id", "spectrum.spectrum_id", "spectrum classified"),
    _ref("campaign_id", "campaign.campaign_id", "campaign", nullable=True),
    col(
        "iteration",
        sa.Integer,
        "Campaign iteration whose model made the prediction (null: a classify job's; see "
        "model_id and job_id)",
        "meta.number",
        principal=True,
    ),
    col(
        "predicted_class",
        sa.String(16),
        "Most probable class: " + " | ".join(CLASSES),
        "src.class;meta.main",
        principal=True,
    ),
    col("p_single_peak", sa.Float, "Probability of single-peak emission", _PROB, principal=True),
    col("p_double_peak", sa.Float, "Probability of double-peak emission", _PROB, principal=True),
    col(
        "p_absorption", sa.Float, "Probability of absorption (uninteresting)", _PROB, principal=True
    ),
    col(
        "entropy",
        sa.Float,
        "Shannon entropy of the class probabilities (natural log)",
        "stat.error",
        "",
        principal=True,
    ),
    col("hou_verdict", sa.String(16), "Verdict of the Hou et al. (2016) H-alpha rule", "src.class"),
    col(
        "role",
        sa.String(24),
        "Selected as: " + " | ".join(ROLES) + " (null: not selected)",
        "meta.code",
    ),
    _ref("model_id", "model.model_id", "model that made the prediction", nullable=True),
    col("job_id", sa.String(64), "UWS job that made the prediction", "meta.id"),
    col(
        "labelled",
        sa.Boolean,
        "True when the oracle had labelled the spectrum before this iteration (a training row)",
        "meta.code",
    ),
    col(
        "surprise",
        sa.Float,
        "Anomaly score: how unlike the rest of the pool the spectrum is in the network's"
        " embedding (IsolationForest; higher is more surprising; null: not scored)",
        "stat.value",
    ),
    col(
        "surprise_rank",
        sa.Integer,
        "Rank among the iteration's surprises, the oracle's relevance answers taken into"
        " account (1: shown first; null: outside the iteration's SURPRISES)",
        "meta.number",
    ),
    col(
        "scored_by",
        sa.String(16),
        "Who scored the spectrum: " + " | ".join(SCORERS) + " (gate: the cascade's cheap"
        " model was sure of absorption and the reference CNN was skipped; null: scored"
        " before the cascade existed, by the reference CNN)",
        "meta.code",
    ),
    sa.Index("ix_prediction_entropy", "campaign_id", "iteration", "entropy"),
    # predicted-class counts of an iteration read this index alone, not the 4 M-row table
    sa.Index("ix_prediction_class", "campaign_id", "iteration", "predicted_class"),
    sa.Index("ix_prediction_spectrum", "spectrum_id"),
    sa.Index("ix_prediction_model", "model_id"),
    # the few rows of a pool-sized iteration the page, the iterate job and the results
    # read: without these each read scanned the iteration (1.5-1.9 s at 1 M rows)
    *(partial_index(name, columns, where) for name, columns, where in PREDICTION_SUBSETS),
    comment=(
        "Class probabilities: every pool spectrum of a campaign's latest iteration, and the"
        " selected (query, precision-sample, candidate) or labelled ones of earlier"
        " iterations and of classify jobs; every row of every iteration is in the"
        " prediction_file Parquet files."
    ),
)

prediction_file = sa.Table(
    "prediction_file",
    metadata,
    _id("prediction_file_id", "prediction file"),
    _ref("campaign_id", "campaign.campaign_id", "campaign", nullable=True),
    col(
        "iteration",
        sa.Integer,
        "Campaign iteration whose model made the predictions (null: a classify job's)",
        "meta.number",
    ),
    _ref("model_id", "model.model_id", "model that made the predictions", nullable=True),
    col("job_id", sa.String(64), "UWS job that made the predictions", "meta.id"),
    col(
        "path",
        sa.Text,
        "Parquet file of the whole pool's predictions, relative to the service's home",
        "meta.ref",
    ),
    col("n_rows", sa.Integer, "Spectra scored", "meta.number"),
    col(
        "n_candidates",
        sa.Integer,
        "Spectra predicted as emission (single- or double-peak), batch spectra included",
        "meta.number",
    ),
    col(
        "arithmetic", sa.String(8), "Number format of the scoring: fp32 | bf16 | int8", "meta.code"
    ),
    col(
        "created",
        sa.DateTime,
        "When the file was written (UTC)",
        "time.creation",
        xtype="timestamp",
    ),
    comment="The full pool's predictions of one iteration or classify job, as a columnar file.",
)

iteration = sa.Table(
    "iteration",
    metadata,
    _id("iteration_id", "iteration"),
    _ref("campaign_id", "campaign.campaign_id", "campaign"),
    col(
        "number",
        sa.Integer,
        "Iteration number within the campaign (0 = before any label)",
        "meta.number",
        nullable=False,
        principal=True,
    ),
    col(
        "strategy",
        sa.String(32),
        "Query strategy that chose this iteration's batch",
        "meta.code",
    ),
    col(
        "n_labels",
        sa.Integer,
        "Oracle labels of the pool this iteration's model was trained on "
        "(0 for iteration 0, trained on the source set alone)",
        "meta.number",
        principal=True,
    ),
    col(
        "n_candidates",
        sa.Integer,
        "Pool spectra this iteration's model predicts as emission (single- or double-peak)",
        "meta.number",
        principal=True,
    ),
    col(
        "error",
        sa.Float,
        "Fraction of this iteration's query batch its model classified wrongly, as the oracle "
        "labelled it afterwards (empty until labelled; not-sure and bad verdicts left out)",
        "stat.error",
        "",
        principal=True,
    ),
    col(
        "precision_emission",
        sa.Float,
        "Emission-vs-absorption precision of this iteration's candidates: share of its labelled "
        "precision sample the oracle called single- or double-peak (not-sure and bad left out)",
        "stat.fit.goodness",
        "",
        principal=True,
    ),
    col(
        "precision_emission_lower",
        sa.Float,
        "One-sided 95% Clopper-Pearson lower bound of precision_emission",
        "stat.fit.goodness;stat.min",
        "",
    ),
    col(
        "n_sample_judged",
        sa.Integer,
        "Spectra of the precision sample with a class verdict (the precisions' denominator)",
        "meta.number",
    ),
    *(
        column
        # emission classes only: the precision sample is drawn among predicted emission,
        # so a precision_absorption column would always be empty
        for name in (c.replace("-", "_") for c in TARGET_CLASSES)
        for column in (
            col(
                f"precision_{name}",
                sa.Float,
                f"Exact-class precision for {name.replace('_', '-')}: share of the precision "
                f"sample predicted {name.replace('_', '-')} that the oracle labelled so "
                "(not-sure and bad left out)",
                "stat.fit.goodness",
                "",
            ),
            col(
                f"precision_{name}_lower",
                sa.Float,
                f"One-sided 95% Clopper-Pearson lower bound of precision_{name}",
                "stat.fit.goodness;stat.min",
                "",
            ),
        )
    ),
    col("train_seconds", sa.Float, "Wall-clock time spent training", "time.duration", "s"),
    col(
        "classify_seconds",
        sa.Float,
        "Wall-clock time spent classifying the pool",
        "time.duration",
        "s",
    ),
    col(
        "started", sa.DateTime, "When the iteration started (UTC)", "time.start", xtype="timestamp"
    ),
    col(
        "finished", sa.DateTime, "When the iteration finished (UTC)", "time.end", xtype="timestamp"
    ),
    # --- added by revision 0008 (issue 25), so at the end
    col(
        "n_answered",
        sa.Integer,
        "Spectra of this iteration's batch the oracle has labelled so far (what the next "
        "iteration trains on)",
        "meta.number",
    ),
    col(
        "precision_estimate",
        sa.Float,
        "Estimated emission precision of every pool spectrum this iteration's model predicts as "
        "emission: labelled ones by their verdicts, unlabelled ones by the precision sample "
        "(stratified; empty until the sample is labelled)",
        "stat.fit.goodness",
        "",
    ),
    col(
        "precision_estimate_lower",
        sa.Float,
        "One-sided 95% lower bound of precision_estimate (Clopper-Pearson on the sampled stratum)",
        "stat.fit.goodness;stat.min",
        "",
    ),
    col(
        "churn",
        sa.Float,
        "Share of pool spectra whose predicted class changed since the previous iteration",
        "stat.value",
        "",
    ),
    col(
        "candidate_agreement",
        sa.Float,
        "Jaccard overlap of this and the previous iteration's predicted-emission sets",
        "stat.value",
        "",
    ),
    col(
        "n_flipped",
        sa.Integer,
        "Pool spectra the oracle labelled absorption that this iteration's model predicts as "
        "emission",
        "meta.number",
    ),
    col(
        "n_uncertain",
        sa.Integer,
        "Unlabelled pool spectra whose emission probability is between 0.1 and 0.9",
        "meta.number",
    ),
    col(
        "stop",
        sa.Boolean,
        "The stopping rule's decision after this iteration (service.learn.stability)",
        "meta.code",
    ),
    col("stop_reason", sa.Text, "Why the stopping rule decided so", "meta.note"),
    # --- added by revision 0015 (issue 25): the catalogue, where the oracle's verdicts win
    col(
        "n_catalogue",
        sa.Integer,
        "Pool spectra in the campaign's emission catalogue after this iteration: the oracle's "
        "verdict where it gave a class, this iteration's prediction elsewhere",
        "meta.number",
    ),
    col(
        "catalogue_estimate",
        sa.Float,
        "Estimated emission precision of that catalogue: its labelled spectra are right by "
        "their verdicts, its unlabelled ones are estimated by the precision sample "
        "(stratified; empty until the sample is labelled)",
        "stat.fit.goodness",
        "",
    ),
    col(
        "catalogue_estimate_lower",
        sa.Float,
        "One-sided 95% lower bound of catalogue_estimate (Clopper-Pearson on the sampled stratum)",
        "stat.fit.goodness;stat.min",
        "",
    ),
    sa.UniqueConstraint("campaign_id", "number"),
    comment="Metrics of each active-learning iteration.",
)

#: Folders an operator named to ``alvo ingest tree``: the only local paths the service
#: reads spectra from or serves (:mod:`service.store.archive_roots`). Not published over TAP:
#: a server's file paths are nobody's business.
archive_root = sa.Table(
    "archive_root",
    metadata,
    col("root_id", sa.String(32), "Short hash of the folder's path", "meta.id", primary_key=True),
    col("path", sa.Text, "The folder, absolute and with links resolved", "meta.ref", None,
        nullable=False),
    col("registered", sa.DateTime, "When first ingested from (UTC)", "time.creation",
        xtype="timestamp"),
    comment="Archive trees an operator ingested: files under them may be read and served.",
)  # fmt: skip

#: The tables published over TAP, in the order TAP_SCHEMA lists them.
PUBLISHED = (
    campaign,
    dataset,
    spectrum,
    label,
    relevance,
    model,
    prediction,
    prediction_file,
    iteration,
)


@dataclasses.dataclass(frozen=True)
class ColumnMeta:
    """VO metadata of one column: what TAP_SCHEMA.columns and VOTable FIELDs need."""

    name: str
    datatype: str  # VOTable datatype
    arraysize: str | None
    description: str
    ucd: str | None
    unit: str | None
    utype: str | None
    xtype: str | None
    principal: bool
    indexed: bool


#: Column names that are ADQL reserved words: published delimited (``"size"``).
ADQL_RESERVED = frozenset({"size", "domain", "user", "value", "first", "last", "section"})


def adql_name(name: str) -> str:
    """The column name as ADQL must write it: delimited if it is a reserved word."""
    return f'"{name}"' if name.lower() in ADQL_RESERVED else name


def column_meta(column: sa.Column) -> ColumnMeta:
    """The VO metadata of a column of :data:`metadata` (one source of truth)."""
    info = column.info
    datatype, arraysize = votable_type(column.type)
    indexed = column.primary_key or any(
        column.name == index.columns.keys()[0] for index in column.table.indexes
    )
    return ColumnMeta(
        name=adql_name(column.name),
        datatype=datatype,
        arraysize=arraysize,
        description=info.get("description") or "",
        ucd=info.get("ucd"),
        unit=info.get("unit") or None,
        utype=info.get("utype"),
        xtype=info.get("xtype"),
        principal=bool(info.get("principal")),
        indexed=bool(indexed),
    )


def votable_type(type_: sa.types.TypeEngine) -> tuple[str, str | None]:
    """VOTable ``datatype`` and ``arraysize`` of a SQLAlchemy column type."""
    if isinstance(type_, sa.Boolean):
        return "boolean", None
    if isinstance(type_, sa.BigInteger):
        return "long", None
    if isinstance(type_, sa.Integer):
        return "int", None
    if isinstance(type_, sa.Float):
        return "double", None
    return "char", "*"


def create_all(engine: sa.Engine) -> None:
    """Bring the result tables up to date: the newest Alembic revision, plus on PostgreSQL
    pgSphere's spatial index. Idempotent; a database already up to date is only read.

    The revisions live in :mod:`service.store.migrations`. Two steps stay outside
    them and run on every start, as they depend on more than the revision: the
    identity index where duplicate spectra from old ingests blocked it
    (:func:`ensure_identity_index`), and, on PostgreSQL with pgSphere installed, a GiST
    index on ``spoint(radians(ra), radians(dec))`` -- exactly the expression the ADQL
    translation writes for ``POINT(ra, dec)``, so cone searches use it.
    """
    if not migrations.upgrade(engine):  # a start that migrated may just have warned (0002)
        with engine.begin() as conn:
            ensure_identity_index(conn)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            has_sphere = conn.execute(
                sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_sphere'")
            ).first()
            if has_sphere:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_sphere"))
                conn.execute(
                    sa.text(
                        "CREATE INDEX IF NOT EXISTS ix_spectrum_spoint ON spectrum "
                        "USING gist (spoint(radians(ra), radians(dec)))"
                    )
                )


def ensure_identity_index(conn: sa.Connection) -> None:
    """Build :data:`spectrum_identity` where the database lacks it, unless duplicates block it.

    Where ingests from before alvo made them idempotent left a spectrum twice in
    a dataset, the unique index cannot be built: say so and go on (new ingests are
    still idempotent, :meth:`service.store.datasets.Datasets.append` checks too).
    The duplicates are looked for first, so a failed build never spoils the
    caller's transaction (PostgreSQL would refuse every later statement in it).
    """
    if has_index(conn, str(spectrum_identity.name)):
        return
    duplicate = conn.execute(
        sa.select(spectrum.c.dataset_id, spectrum_key)
        .where(spectrum_key.is_not(None))
        .group_by(spectrum.c.dataset_id, spectrum_key)
        .having(sa.func.count() > 1)
        .limit(1)
    ).first()
    if duplicate is not None:
        logging.getLogger(__name__).warning(
            "spectrum: duplicate spectra in a dataset (from ingests before alvo made them "
            "idempotent) prevent the unique index ux_spectrum_identity; re-ingest the "
            "dataset under a new name to clean it (dataset %s, %r)",
            *duplicate,
        )
        return
    conn.execute(sa.schema.CreateIndex(spectrum_identity, if_not_exists=True))


def has_index(conn: sa.Connection, name: str) -> bool:
    """Whether the database has an index of that name (expression indexes too, which
    SQLAlchemy's inspector skips on SQLite)."""
    if conn.dialect.name == "postgresql":
        query = "SELECT to_regclass(:name) IS NOT NULL"
    else:
        query = "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = :name"
    return bool(conn.execute(sa.text(query), {"name": name}).scalar())


def row_dicts(table: sa.Table, rows: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Columns (name -> sequence) to a list of row dicts for ``conn.execute(insert, rows)``.

    numpy arrays become Python values in one ``tolist()`` each (psycopg does not
    adapt numpy scalars, and a per-value conversion would dominate bulk inserts).
    """
    names = [name for name in rows if name in table.c]
    columns = [_plain_list(rows[name]) for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: Mapping[str, Any]) -> int:
    """Insert columns (name -> array) fast: one driver-level executemany, no per-row ORM work.

    For the millions of spectrum and prediction rows an ingest or classify
    job writes; ~5x faster than ``conn.execute(table.insert(), row_dicts)``
    (on PostgreSQL it is ``COPY ... FROM STDIN``). Returns the number of rows.
    """
    names = [name for name in rows if name in table.c]
    if conn.dialect.name == "postgresql":
        return _copy_in(conn, table, names, [_plain_list(rows[name]) for name in names])
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=names)
    columns = dict(zip(names, (_plain_list(rows[name]) for name in names), strict=True))
    if compiled.positional:
        order = [columns[key] for key in compiled.positiontup or ()]
        params: list[Any] = list(zip(*order, strict=True))
    else:
        params = [
            dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
        ]
    if params:
        conn.exec_driver_sql(str(compiled), params)
    return len(params)


#: A load that adds at least this share of a table's rows rebuilds the table's indexes.
REBUILD_SHARE = 0.25
#: Databases where :func:`bulk_load` rebuilds (see there why not PostgreSQL).
REBUILD_DIALECTS = frozenset({"sqlite"})
#: SQLite page cache while indexes are rebuilt (KiB; the default is 2 MiB): the sorter's runs.
BULK_CACHE_KIB = 256 * 1024


@contextlib.contextmanager
def bulk_load(conn: sa.Connection, table: sa.Table, n_rows: int) -> Iterator[None]:
    """Around deletes and :func:`bulk_insert` of ``n_rows`` rows into ``table``: on SQLite,
    when that is at least :data:`REBUILD_SHARE` of the table, drop its indexes first and
    build them again (one sort each) at the end.

    Why: an index whose key comes in random order (``prediction``'s entropy) is
    updated one B-tree page at a time, and deleting a pool's rows through it costs
    the same. A campaign's second iteration of 4.1 M predictions (deleting 3.7 M of
    the first's) took 237 s with the indexes kept, 52 s rebuilt; into an empty
    table both take ~44 s (docs/performance.md). The drop and the build are in the caller's
    transaction (which must already have written a row: Python's sqlite3 opens a
    transaction before DML only), so readers keep the old indexes until the commit
    and a failure rolls everything back. On PostgreSQL nothing changes: rebuilding
    gained 10 % at 1 M rows, and a DROP INDEX there locks TAP's readers out of the
    table until the commit.

    Then SQLite's statistics of the table are made again (``ANALYZE``: 0.22 s at 1 M
    rows). Without them its planner ranks indexes by the columns a query constrains,
    so a TAP user's ``campaign_id = 1 AND iteration = 1 AND spectrum_id IN (...)``
    scanned the iteration through ``ix_prediction_entropy`` instead of finding three
    rows (PostgreSQL's autovacuum keeps its own statistics).
    """
    if conn.dialect.name not in REBUILD_DIALECTS:
        yield
        return
    existing = conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0
    if n_rows < REBUILD_SHARE * existing:
        yield
        return
    sqlite = conn.dialect.name == "sqlite"
    if sqlite and not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        raise RuntimeError("bulk_load needs an open transaction (write a row first)")
    with _page_cache(conn, BULK_CACHE_KIB) if sqlite else contextlib.nullcontext():
        for index in table.indexes:
            conn.execute(sa.schema.DropIndex(index, if_exists=True))
        yield
        for index in table.indexes:
            conn.execute(sa.schema.CreateIndex(index))
        conn.exec_driver_sql(f'ANALYZE "{table.name}"')


@contextlib.contextmanager
def _page_cache(conn: sa.Connection, kib: int) -> Iterator[None]:
    """SQLite's page cache of this connection at ``kib`` KiB for a while, then as it was."""
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size = -{kib}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {before}")


def _copy_in(conn: sa.Connection, table: sa.Table, names: list[str], columns: list[list]) -> int:
    """PostgreSQL bulk load through psycopg's COPY, inside the connection's transaction."""
    target = f"{table.schema}.{table.name}" if table.schema else table.name
    quoted = ", ".join(f'"{name}"' for name in names)
    count = 0
    statement = f"COPY {target} ({quoted}) FROM STDIN"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor, cursor.copy(statement) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
                count += 1
    except conn.dialect.loaded_dbapi.Error as error:
        # wrapped as SQLAlchemy wraps its own statements' errors, so a full disk (53100),
        # a lock or a database restart met by COPY is recognised like any other
        # (uws.store.is_disk_full / is_busy / is_unavailable)
        raise sa.exc.DBAPIError.instance(
            statement, None, error, conn.dialect.loaded_dbapi.Error
        ) from error
    return count


def _plain_list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
