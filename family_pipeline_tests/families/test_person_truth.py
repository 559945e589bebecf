"""The person-to-truth vote is made once per crosswalk and read back by later steps."""

import pyarrow as pa

from family_pipeline.evaluation import person_truth as pt
from family_pipeline.evaluation.resolution import true_person_of
from family_pipeline.lib.lake import Lake, write_parquet


def _lake(tmp_path, persons):
    lake = Lake(tmp_path)
    keys = {"registry": ["r"] * 4, "record_id": ["1", "2", "3", "4"], "group": ["subject"] * 4}
    lake.write("resolution", "person_xref", pa.table({**keys, "person_id": persons}))
    write_parquet(lake.truth("mentions"), pa.table({**keys, "person_id": [100, 100, 200, 300]}))
    return lake


def test_vote_is_stored_and_renewed_with_the_crosswalk(tmp_path, monkeypatch):
    lake = _lake(tmp_path, [1, 1, 1, 2])
    assert pt.in_asset_truth(lake)
    vote = pt.person_truth(lake)
    assert vote.to_dict() == true_person_of(lake).to_dict() == {1: 100, 2: 300}
    assert lake.table("evaluation", "person_truth").exists()
    pt._CACHE.clear()

    def no_second_vote(*args, **kwargs):
        raise AssertionError("the stored vote should have been read")

    monkeypatch.setattr("family_pipeline.evaluation.resolution.true_person_of", no_second_vote)
    assert pt.person_truth(lake).to_dict() == {1: 100, 2: 300}
    monkeypatch.undo()
    lake = _lake(tmp_path, [5, 6, 6, 6])  # a new crosswalk: a new vote
    assert pt.person_truth(lake).to_dict() == {5: 100, 6: 100}
