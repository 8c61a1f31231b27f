"""``/similar`` answers as STILTS (TOPCAT's table library) wants: votlint-clean, readable.

The index here is built from the pool's 140-pixel features (the iterate job builds it
from the network's embedding, tests/test_learning_jobs.py); what is checked is the
VOTable an astronomer's TOPCAT opens.
"""

from __future__ import annotations

import subprocess

import httpx

from service.learn.similar import SimilarityIndex, fit_projection
from service.store.campaigns import Campaigns
from service.store.predictions import similarity_index_file
from tests.peers.stilts import require_stilts, votlint
from tests.web_world import served_world


def test_similar_votable_is_votlint_clean_and_stilts_reads_it(tmp_path):
    stilts = require_stilts()
    with served_world(tmp_path) as (url, world):
        campaigns = Campaigns(world.settings)
        campaign = campaigns.require(world.campaign)
        features = campaign.target.features.array()
        projection = fit_projection(features, 16)
        path = similarity_index_file(world.settings.home, campaign.campaign_id, 0)
        SimilarityIndex.build(projection(features), projection).save(path)
        asked = "ivo://t/pool?5"
        for fmt in ("TABLEDATA", "BINARY2"):
            params = {"ID": asked, "K": "7", "RESPONSEFORMAT": f"votable/{fmt[0].lower()}"}
            if fmt == "BINARY2":
                params["RESPONSEFORMAT"] = "application/x-votable+xml;serialization=BINARY2"
            else:
                params.pop("RESPONSEFORMAT")
            answer = httpx.get(f"{url}/similar", params=params)
            assert answer.status_code == 200, answer.text
            assert f"<{fmt}>".encode() in answer.content
            assert votlint(answer.content) == []
        read = subprocess.run(
            [stilts, "tpipe", f"in={url}/similar?ID={asked}&K=7", "ifmt=votable",
             "cmd=keepcols 'query_id rank pubdid distance'", "omode=out", "ofmt=csv"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        lines = read.stdout.strip().splitlines()
        assert read.returncode == 0 and lines[0] == "query_id,rank,pubdid,distance", read.stderr
        assert len(lines) == 8 and all(line.startswith(asked) for line in lines[1:])
