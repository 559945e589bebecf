"""The data dictionary of family_features: loads, and refuses what a reader could not trust."""

from __future__ import annotations

import shutil

import pytest
import yaml

from family_pipeline.catalog import CatalogError, default_seeds_dir
from family_pipeline.families import GUARANTEED_FEATURES, feature_dictionary, load_feature_dictionary
from family_pipeline.families.dictionary import FEATURES_FILE


def test_the_repository_dictionary_documents_every_guaranteed_parameter():
    d = feature_dictionary()
    assert len(d.features) >= 101                   # family_id + at least 100 parameters
    assert set(GUARANTEED_FEATURES) <= set(d.names)
    assert d.names[0] == "family_id"
    for f in d.features:
        assert f.meaning and f.unit and f.sources, f.name
    assert d.dtypes["income_pc"] == "float64" and d.dtypes["receives_asp"] == "bool" and d.dtypes["region"] == "str"


@pytest.fixture
def seeds_copy(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(default_seeds_dir(), seeds)
    return seeds


def _edit(seeds, change):
    path = seeds / FEATURES_FILE
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_missing_guaranteed_parameter_is_named(seeds_copy):
    _edit(seeds_copy, lambda raw: raw.update(features=[f for f in raw["features"] if f["name"] != "income_pc"]))
    with pytest.raises(CatalogError, match="income_pc"):
        load_feature_dictionary(seeds_copy)


def test_an_unknown_source_registry_is_named(seeds_copy):
    def change(raw):
        raw["features"][5]["sources"] = ["no_such_registry"]
    _edit(seeds_copy, change)
    with pytest.raises(CatalogError, match="no_such_registry"):
        load_feature_dictionary(seeds_copy)


def test_a_duplicate_or_badly_typed_parameter_is_refused(seeds_copy):
    _edit(seeds_copy, lambda raw: raw["features"].append(dict(raw["features"][3])))
    with pytest.raises(CatalogError, match="listed twice"):
        load_feature_dictionary(seeds_copy)
    _edit(seeds_copy, lambda raw: raw["features"][-1].update(name="members_again", dtype="decimal"))
    with pytest.raises(CatalogError, match="members_again.*dtype"):
        load_feature_dictionary(seeds_copy)


def test_a_bad_reference_value_is_refused(seeds_copy):
    _edit(seeds_copy, lambda raw: raw["parameters"].update(business_income_margin=1.5))
    with pytest.raises(CatalogError, match="business_income_margin"):
        load_feature_dictionary(seeds_copy)
    _edit(seeds_copy, lambda raw: raw["parameters"].update(business_income_margin=0.15,
                                                           livestock_units={"cattle": 1.0}))
    with pytest.raises(CatalogError, match="livestock_units"):
        load_feature_dictionary(seeds_copy)
