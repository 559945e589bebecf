"""The families assets end to end on the small synthetic country: registries → resolution →
families → family_features, on a real Dagster instance, measured against the truth."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from family_pipeline.defs.families import FAMILIES, FAMILY_FEATURES, FAMILY_MEMBERS, ONE_FAMILY_CHECK
from family_pipeline.evaluation import evaluate
from family_pipeline.families import RULES, feature_dictionary
from family_pipeline_tests.conftest import run_on_instance


@pytest.fixture(scope="module")
def families_run(family_map_run):
    return family_map_run


def _metadata(result, key):
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == key)
    return event.materialization.metadata


def test_families_reach_the_accuracy_goal_and_report_it(families_run):
    meta = _metadata(families_run["result"], FAMILY_MEMBERS)
    assert meta["truth_exact_family_rate"].value >= 0.97
    assert meta["truth_pairwise_f1"].value >= 0.98
    report = evaluate(families_run["root"])["families"]
    assert report["status"] == "ok"
    assert report["families"]["exact_family_rate"] == meta["truth_exact_family_rate"].value
    assert abs(report["families"]["persons_per_family"] - report["families"]["true_persons_per_family"]) < 0.15
    checks = families_run["result"].get_asset_check_evaluations()
    assert [c.passed for c in checks if c.check_name == ONE_FAMILY_CHECK] == [True]


def test_tables_keep_the_contract(families_run):
    lake = families_run["lake"]
    members = lake.read("families", "family_members").to_pandas()
    families = lake.read("families", "families").to_pandas()
    persons = lake.read("resolution", "persons").to_pandas()
    assert list(members.columns) == ["person_id", "family_id", "role", "rule"]
    assert members.person_id.is_unique and set(members.rule) <= set(RULES)
    assert set(members.role) <= {"head", "spouse", "child", "single"}
    assert persons.set_index("person_id").alive.reindex(members.person_id).all()   # the living only
    assert set(families.columns) >= {"family_id", "region", "settlement_type", "members", "head_person_id", "family_type"}
    assert families.family_id.is_unique and set(families.family_id) == set(members.family_id)
    size = members.groupby("family_id").size()
    assert (families.set_index("family_id").members == size.reindex(families.family_id).to_numpy()).all()
    assert set(families.settlement_type) <= {"city", "village"}
    assert families.region.str.match(r"^KZ-\d\d$").all()


def test_features_columns_are_exactly_the_dictionary(families_run):
    lake = families_run["lake"]
    features = lake.read("families", "family_features").to_pandas()
    dictionary = feature_dictionary()
    assert list(features.columns) == list(dictionary.names)
    families = lake.read("families", "families").to_pandas()
    assert len(features) == len(families) and features.family_id.is_unique
    for name, dtype in dictionary.dtypes.items():
        kind = features[name].dtype
        expected = {"int64": np.int64, "float64": np.float64, "bool": np.bool_}.get(dtype)
        if expected is not None:
            assert kind == expected, name
        else:
            assert pd.api.types.is_string_dtype(kind) or kind == object, name
    assert (features.members >= 1).all()
    assert (features.adults + features.children_under_18 == features.members).all()
    assert np.allclose(features.income_pc * features.members, features.income_total, atol=features.members)
    assert features.income_total.gt(0).mean() > 0.8
    meta = _metadata(families_run["result"], FAMILY_FEATURES)
    assert meta["columns"].value == len(dictionary.names)
    assert meta["dictionary"].value.endswith("family_features.yaml")


def test_livestock_counts_each_animal_once_per_family_under_its_voted_species(families_run):
    """A family's animals by species: an animal owned by one of its members, counted once however
    many registries record it, under the species most of its records give (ties alphabetical).
    Recomputed here with pandas joins, independently of the feature code."""
    lake = families_run["lake"]
    animals = lake.read("resolution", "animal_records", columns=["registry", "record_id", "species", "animal_key"]).to_pandas()
    xref = lake.read("resolution", "person_xref", columns=["registry", "record_id", "group", "person_id"]).to_pandas()
    owners = xref[xref.group == "owner"].drop_duplicates(["registry", "record_id"])[["registry", "record_id", "person_id"]]
    members = lake.read("families", "family_members", columns=["person_id", "family_id"]).to_pandas()
    owned = animals.merge(owners, on=["registry", "record_id"]).merge(members, on="person_id")
    votes = owned.groupby(["animal_key", "species"]).size().rename("n").reset_index()
    votes = votes.sort_values(["animal_key", "n", "species"], ascending=[True, False, True]).drop_duplicates("animal_key")
    heads = owned[["family_id", "animal_key"]].drop_duplicates().merge(votes[["animal_key", "species"]], on="animal_key")
    expected = heads.groupby(["family_id", "species"]).size().unstack(fill_value=0)
    features = lake.read("families", "family_features").to_pandas().set_index("family_id")
    columns = {"cattle": "livestock_cattle", "sheep": "livestock_sheep", "goat": "livestock_goats",
               "horse": "livestock_horses", "camel": "livestock_camels"}
    assert set(expected.columns) <= set(columns) and expected.to_numpy().sum() > 100
    for species, column in columns.items():
        want = expected[species].reindex(features.index, fill_value=0) if species in expected else 0
        assert (features[column] == want).all(), species
    assert (features.livestock_heads == features[list(columns.values())].sum(axis=1)).all()


def test_feature_income_follows_the_truth(families_run, small_country):
    """Per-capita income of each family against the truth, where the family was recovered."""
    from family_pipeline.evaluation.families import golden_to_truth

    lake = families_run["lake"]
    features = lake.read("families", "family_features").to_pandas()
    families = lake.read("families", "families").to_pandas()
    xref = lake.read("resolution", "person_xref").to_pandas()
    mapping = golden_to_truth(xref, pd.read_parquet(small_country / "truth/mentions.parquet"))
    truth_persons = pd.read_parquet(small_country / "truth/persons.parquet", columns=["person_id", "family_id"])
    truth_families = pd.read_parquet(small_country / "truth/families.parquet", columns=["family_id", "income_pc", "members"])
    heads = families[["family_id", "head_person_id"]].merge(mapping, left_on="head_person_id", right_on="person_id")
    heads = heads.merge(truth_persons.rename(columns={"person_id": "true_id", "family_id": "true_family"}), on="true_id")
    joined = features.merge(heads[["family_id", "true_family"]], on="family_id").merge(
        truth_families, left_on="true_family", right_on="family_id", suffixes=("", "_true"))
    same = joined[joined.members == joined.members_true]
    assert len(same) > 0.9 * len(features)
    assert np.corrcoef(same.income_pc, same.income_pc_true)[0, 1] > 0.9


def test_no_personal_data_in_families_metadata(families_run, small_country):
    truth = pd.read_parquet(small_country / "truth/persons.parquet", columns=["iin", "last_name"])
    members = pq.read_table(families_run["lake"].table("families", "family_members"), columns=["person_id"])
    ids = {str(v) for v in members.column("person_id").to_pylist()}
    secrets = set(truth.iin.astype(str)) | set(truth.last_name.astype(str))
    for key in (FAMILY_MEMBERS, FAMILIES, FAMILY_FEATURES):
        text = str({k: v.value for k, v in _metadata(families_run["result"], key).items()})
        assert not any(s in text for s in secrets if len(s) > 3)
        assert not any(i in text for i in ids)


def test_rematerializing_gives_byte_identical_tables(families_run, tmp_path_factory):
    lake = families_run["lake"]
    before = {name: lake.table("families", name).read_bytes() for name in ("family_members", "families", "family_features")}
    result, _ = run_on_instance(families_run["root"], tmp_path_factory.mktemp("again"), "family_map",
                                [FAMILY_MEMBERS, FAMILIES, FAMILY_FEATURES])
    assert result.success
    for name, data in before.items():
        assert lake.table("families", name).read_bytes() == data, name


def test_features_written_a_slice_at_a_time_are_the_table_computed_whole(families_run, tmp_path, monkeypatch):
    """The asset's writer sets every section's numeric columns aside on disk and writes the table
    a slice of families at a time; the file holds the table ``family_features`` computes in memory,
    in row groups of the lake's size, and the set-aside files are gone afterwards."""
    from family_pipeline.catalog import catalog
    from family_pipeline.families import features as module
    from family_pipeline.families.sources import reference_date
    from family_pipeline.lib import lake as lake_module

    lake = families_run["lake"]
    members = lake.read("families", "family_members", columns=["person_id", "family_id", "role"]).to_pandas()
    families = lake.read("families", "families", columns=["family_id", "head_person_id", "family_type", "region",
                                                          "settlement_type"]).to_pandas()
    persons = lake.read("resolution", "persons", columns=["person_id", "sex", "birth_date"]).to_pandas()
    dictionary, as_of = feature_dictionary(), reference_date(lake)
    whole = module.family_features(lake, members, families, persons, dictionary, catalog(), as_of)

    spilled = module.feature_columns(lake, members, families, persons, dictionary, catalog(), as_of,
                                     spill_dir=tmp_path)
    assert isinstance(spilled["members"], np.memmap) and isinstance(spilled["income_pc"], np.memmap)
    assert spilled["region"].dtype == object          # text stays in memory
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{n}.npy" for n, t in dictionary.dtypes.items() if t != "str")
    del spilled

    out = tmp_path / "out"
    size = max(len(whole) // 3, 1)
    monkeypatch.setattr(lake_module, "ROW_GROUP", size)
    monkeypatch.setattr(module, "FEATURE_SLICE", size)
    assert module.write_family_features(lake, out / "f.parquet", members, families, persons, dictionary,
                                        catalog(), as_of) == len(whole)
    assert [p.name for p in out.iterdir()] == ["f.parquet"]
    written = pq.ParquetFile(out / "f.parquet")
    assert written.metadata.num_row_groups == -(-len(whole) // size) >= 3
    table = written.read()
    assert table.equals(pa.Table.from_pandas(whole, preserve_index=False))
    assert table.schema.pandas_metadata["columns"] == pq.read_schema(
        lake.table("families", "family_features")).pandas_metadata["columns"]


def test_a_country_formed_a_part_at_a_time_gets_the_families_formed_at_once(families_run, monkeypatch):
    """Formation by parts of related residents (spouses, parents, children, wards, people at one
    address, their addresses compared a slice of residents at a time) gives the families, members
    and counts of the whole country formed at once."""
    from family_pipeline.families import formation
    from family_pipeline.families.sources import formation_inputs

    inputs = formation_inputs(families_run["lake"])
    whole = formation.form_families(inputs)
    residents = whole.stats["residents"]
    size = residents // 7
    monkeypatch.setattr(formation, "ADDRESS_SLICE", residents // 5)
    res = formation._residents(inputs.persons)
    parts = formation._parts(inputs, res, formation._resident_addresses(res, inputs.addresses).code, size)
    assert len(parts) >= 7 and sum(len(p) for p in parts) == residents
    assert max(len(p) for p in parts) <= size
    together = whole.members.groupby("family_id").person_id.apply(set)
    part_of = {pid: k for k, part in enumerate(parts) for pid in part.tolist()}
    assert all(len({part_of[p] for p in family}) == 1 for family in together)  # no family is cut

    by_parts = formation.form_families(inputs, part_residents=size)
    assert by_parts.members.equals(whole.members)
    assert by_parts.families.equals(whole.families)
    assert by_parts.stats == whole.stats
