"""The scoring seeds load, and a wrong seed fails loudly naming the file and the field."""

import shutil
from pathlib import Path

import pytest
import yaml

from family_pipeline.catalog import default_seeds_dir
from family_pipeline.scoring import ScoringSeedError, load_scoring_seeds


@pytest.fixture
def seeds_dir(tmp_path) -> Path:
    """A writable copy of the scoring seeds and the family_features data dictionary."""
    src = default_seeds_dir()
    shutil.copytree(src / "scoring", tmp_path / "scoring")
    if (src / "family_features.yaml").exists():
        shutil.copy(src / "family_features.yaml", tmp_path / "family_features.yaml")
    return tmp_path


def _edit(path: Path, change) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_the_repository_seeds_load_with_versions_and_23_criteria():
    seeds = load_scoring_seeds()
    assert seeds.ae_map.version and seeds.pilot.version and seeds.welfare.version
    assert len(seeds.pilot.criteria) == 23
    assert {c.kind for c in seeds.pilot.criteria} == {"economic", "socio-demographic"}
    six = [r for r in seeds.pilot.rules if r.category == 6]
    assert len(six) == 1 and len(six[0].all_of) == 4 and not (six[0].any_of or six[0].of)
    assert abs(sum(d.weight for d in seeds.ae_map.dimensions.values()) - 1) < 1e-9


def test_every_feature_the_seeds_use_is_in_the_data_dictionary():
    dictionary = default_seeds_dir() / "family_features.yaml"
    if not dictionary.exists():
        pytest.skip("seeds/family_features.yaml not written yet")
    from family_pipeline.scoring.seeds import DERIVED, known_features

    seeds = load_scoring_seeds()
    used = seeds.welfare.features() | seeds.ae_map.features() | seeds.pilot.features()
    assert used - set(DERIVED) <= known_features(default_seeds_dir())


def _first_indicator_feature(raw):
    raw["dimensions"]["economic"]["indicators"][1]["feature"] = "overdue_loanz"


def _dimension_weight(raw):
    raw["dimensions"]["social"]["weight"] = 0.3


def _indicator_weight(raw):
    raw["dimensions"]["housing"]["indicators"][0]["weight"] = 0.9


def _thresholds(raw):
    raw["thresholds"]["D"] = raw["thresholds"]["E"] - 1


def _points(raw):
    raw["dimensions"]["health"]["indicators"][0]["points"] = [[0, 100], [0, 50]]


def _no_version(raw):
    del raw["version"]


def _criteria_count(raw):
    raw["criteria"].pop()


def _unknown_criterion(raw):
    raw["rules"][0]["all_of"] = ["K11", "K12", "K13", "K99"]


def _criterion_feature(raw):
    raw["criteria"][3]["feature"] = "consumption_estimate"


def _unreachable(raw):
    raw["rules"] = [r for r in raw["rules"] if r["category"] != 5]


def _welfare_produce(raw):
    raw["produce"][0]["kzt_per_unit"] = -1


@pytest.mark.parametrize("file, change, field", [
    ("ae_map.yaml", _first_indicator_feature, "dimensions.economic.indicators.1.feature"),
    ("ae_map.yaml", _dimension_weight, "dimension weights must add up to 1"),
    ("ae_map.yaml", _indicator_weight, "dimensions.housing"),
    ("ae_map.yaml", _thresholds, "thresholds must rise"),
    ("ae_map.yaml", _points, "dimensions.health.indicators.0.points"),
    ("ae_map.yaml", _no_version, "'version'"),
    ("pilot_criteria.yaml", _criteria_count, "23 criteria"),
    ("pilot_criteria.yaml", _unknown_criterion, "K99"),
    ("pilot_criteria.yaml", _criterion_feature, "criteria.3.feature (K04)"),
    ("pilot_criteria.yaml", _unreachable, "reachable"),
    ("pilot_criteria.yaml", _no_version, "'version'"),
    ("welfare.yaml", _welfare_produce, "produce.0.kzt_per_unit"),
])
def test_a_wrong_seed_fails_naming_the_file_and_the_field(seeds_dir, file, change, field):
    if "feature" in field and not (seeds_dir / "family_features.yaml").exists():
        pytest.skip("feature names are checked against seeds/family_features.yaml")
    _edit(seeds_dir / "scoring" / file, change)
    with pytest.raises(ScoringSeedError) as err:
        load_scoring_seeds(seeds_dir)
    assert file in str(err.value) and field in str(err.value)


def test_a_missing_or_broken_seed_file_is_named(seeds_dir):
    (seeds_dir / "scoring" / "pilot_criteria.yaml").unlink()
    with pytest.raises(ScoringSeedError, match="pilot_criteria.yaml: file not found"):
        load_scoring_seeds(seeds_dir)
    (seeds_dir / "scoring" / "pilot_criteria.yaml").write_text("version: [unclosed", encoding="utf-8")
    with pytest.raises(ScoringSeedError, match="pilot_criteria.yaml: not valid YAML"):
        load_scoring_seeds(seeds_dir)
