"""What `vsearch recommend` leaves in a results folder: ``recommendation.json`` and, for a search,
``next_search.yaml`` (the search space of the next mixes)."""

from __future__ import annotations

import dataclasses
import json

import yaml

from vsearch.data import storage
from vsearch.recommend.continuation import continuation_space
from vsearch.recommend.mixes import Recommendation
from vsearch.search.results import read_space

RECOMMENDATION_FILE = "recommendation.json"
NEXT_SPACE_FILE = "next_search.yaml"


def write_recommendation(results: str, recommendation: Recommendation) -> str:
    record = dataclasses.asdict(recommendation) | {"verdict": recommendation.verdict}
    return storage.publish(storage.join(results, RECOMMENDATION_FILE), json.dumps(record, indent=2).encode())


def write_next_space(results: str, recommendation: Recommendation) -> str:
    """The search's space continued with the proposed mixes, its results beside the search's (``RESULTS-next``)."""
    space = continuation_space(read_space(results), recommendation, results.rstrip("/") + "-next")
    text = "# the next mixes `vsearch recommend` proposed; run it with `vsearch run` to continue the search\n"
    return storage.publish(
        storage.join(results, NEXT_SPACE_FILE), (text + yaml.safe_dump(space, sort_keys=False)).encode()
    )
