"""What an iterate job adds to the web tests' world for issue 22: ranked surprises and a
"more like this" index.

:func:`add_surprises` gives ``n`` pool spectra of iteration 0 an anomaly score and a
rank (as ``Iteration.score_surprises`` stores them: ``prediction.surprise`` and
``surprise_rank``) and indexes the pool for ``/similar`` over its adapted features
projected to 32 axes (the iterate job projects the network's embedding instead; the
index does not care).
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from service.learn.similar import SimilarityIndex, fit_projection
from service.store import schema
from service.store.campaigns import Campaigns
from service.store.predictions import similarity_index_file
from tests.web_world import World


def add_surprises(world: World, n: int = 20) -> list[int]:
    """Spectrum ids of the ``n`` surprises, in rank order (pool spectra outside the batch
    first, then some of the batch: a surprise may be a query spectrum too)."""
    campaigns = Campaigns(world.settings)
    campaign = campaigns.require(world.campaign)
    ids = campaigns.spectrum_ids(campaign.target)
    batch = set(world.query_ids) | set(world.sample_ids) | {world.missing_file}
    outside = [int(i) for i in ids if int(i) not in batch]
    ranked = [*outside[: n - 3], *world.query_ids[-3:]]
    prediction = schema.prediction
    with campaigns.engine.begin() as conn:
        for rank, sid in enumerate(ranked, 1):
            conn.execute(
                sa.update(prediction)
                .where(prediction.c.campaign_id == campaign.campaign_id)
                .where(prediction.c.iteration == 0)
                .where(prediction.c.spectrum_id == sid)
                .values(surprise=0.8 - 0.01 * rank, surprise_rank=rank)
            )
    features = np.asarray(campaign.target.features.array(), np.float32)
    projection = fit_projection(features)
    index = SimilarityIndex.build(projection(features), projection)
    index.save(similarity_index_file(world.settings.home, campaign.campaign_id, 0))
    return ranked
