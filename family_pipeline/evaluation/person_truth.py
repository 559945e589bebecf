"""The pipeline person → true person vote, made once per crosswalk for the in-asset accuracy of
the families, scoring and services stages.

``evaluation.resolution.true_person_of`` matches every crosswalk row with its truth mention and
lets each golden person's mentions vote (majority, ties to the smaller true id). The families,
scoring and benefit assets all need the whole vote; their steps run in separate processes, so
the vote is kept in the process and in ``lake/evaluation/person_truth.parquet`` (two int64
columns, with the sizes and modification times of the crosswalk and the truth mentions it was
made from in the file's metadata): the first step that needs it matches, the others read it.

Above ``MAX_ROWS`` crosswalk rows (a national crosswalk) the assets leave the truth figures to
``family-pipeline evaluate`` rather than hold the crosswalk and the truth mentions in memory; so
do they with ``FAMILY_PIPELINE_TRUTH_IN_RUN=0`` (a run timed as production runs it, where no
truth exists: ``family-pipeline bench --truth-after``).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from family_pipeline.lib.lake import Lake

__all__ = ["MAX_ROWS", "TRUTH_IN_RUN_ENV", "in_asset_truth", "person_truth", "truth_in_run"]

#: crosswalk rows up to which the assets measure themselves against the truth in the same run
MAX_ROWS = 60_000_000
#: "0" (or "false", "no"): the assets report no truth figures, whatever the country's size
TRUTH_IN_RUN_ENV = "FAMILY_PIPELINE_TRUTH_IN_RUN"
_META_KEY = b"family_pipeline.person_truth"
_CACHE: dict = {}


def _fingerprint(lake: Lake) -> list | None:
    paths = [lake.table("resolution", "person_xref"), lake.truth("mentions")]
    if not all(p.exists() for p in paths):
        return None
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def truth_in_run(rows: int = 0) -> bool:
    """Whether assets measure themselves against a synthetic country's truth in the run (not
    switched off; ``rows`` crosswalk rows, within :data:`MAX_ROWS`)."""
    return os.environ.get(TRUTH_IN_RUN_ENV, "1").strip().lower() not in ("0", "false", "no") and rows <= MAX_ROWS


def in_asset_truth(lake: Lake) -> bool:
    """Whether the assets measure themselves against the truth in the run: a synthetic country
    whose crosswalk is small enough to match in memory."""
    return (_fingerprint(lake) is not None
            and truth_in_run(pq.ParquetFile(lake.table("resolution", "person_xref")).metadata.num_rows))


def _stored(path, key: str) -> pd.Series | None:
    if not path.exists():
        return None
    try:
        meta = pq.read_schema(path).metadata or {}
        if meta.get(_META_KEY, b"").decode() != key:
            return None
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return None
    return pd.Series(table.column("true_id").to_numpy(), name="true_id",
                     index=pd.Index(table.column("person_id").to_numpy(), name="person_id"))


def person_truth(lake: Lake) -> pd.Series:
    """person_id → true person id, as ``true_person_of(lake)``; made once per crosswalk."""
    fingerprint = _fingerprint(lake)
    if fingerprint is None:
        raise FileNotFoundError("person_truth needs resolution/person_xref and truth/mentions")
    key = json.dumps(fingerprint)
    cached = _CACHE.get(str(lake.root))
    if cached is not None and cached[0] == key:
        return cached[1]
    path = lake.table("evaluation", "person_truth")
    vote = _stored(path, key)
    if vote is None:
        from family_pipeline.evaluation.resolution import true_person_of

        vote = true_person_of(lake)
        table = pa.table({"person_id": vote.index.to_numpy(np.int64), "true_id": vote.to_numpy(np.int64)})
        # a private temporary name: steps running side by side may both write it
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        pq.write_table(table.replace_schema_metadata({_META_KEY: key.encode()}), tmp, compression="zstd")
        os.replace(tmp, path)
    _CACHE.clear()
    _CACHE[str(lake.root)] = (key, vote)
    return vote
