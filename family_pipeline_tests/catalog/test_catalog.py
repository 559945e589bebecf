"""The registry catalog: what it holds, and the loud errors a broken entry gives."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from family_pipeline.catalog import CatalogError, catalog, load_catalog
from family_pipeline.catalog.load import default_seeds_dir


def test_the_catalog_covers_the_country():
    cat = catalog()
    assert len(cat.registries) >= 80
    assert len(set(cat.codes)) == len(cat.registries)
    domains = {r.domain for r in cat.registries}
    assert {"population", "civil_status", "property", "income", "employment", "social_payments",
            "health", "education", "justice", "finance", "agriculture"} <= domains
    formats = {r.source.format for r in cat.registries}
    assert formats == {"csv", "parquet", "jsonl"}
    assert {r.source.encoding for r in cat.registries if r.source.format == "csv"} >= {"utf-8", "cp1251"}
    assert any(r.source.location == "database" for r in cat.registries)
    for r in cat.registries:
        assert r.name_ru and r.name_en and r.agency and "@" in r.owner_email, r.code
        assert r.column(r.record_id).required, r.code
    # the real state databases the design rests on are there
    assert {"gbd_fl", "zags_marriages", "zags_divorces"} <= set(cat.codes)
    # livestock is registered, so virtual cows can be found
    assert any(r.has_animals for r in cat.registries)


def test_reference_data():
    cat = catalog()
    assert len(cat.regions) == 20
    assert abs(sum(r.population_share for r in cat.regions) - 1) < 1e-9
    assert all(r.iso.startswith("KZ-") for r in cat.regions)
    m = cat.money_for(2026)
    assert m.subsistence_minimum > 0 and m.mrp > 0


@pytest.fixture
def seeds(tmp_path) -> Path:
    """A writable copy of the repository's seeds."""
    dst = tmp_path / "seeds"
    shutil.copytree(default_seeds_dir(), dst)
    return dst


def _edit(seeds: Path, file: str, code: str, change) -> None:
    path = seeds / "registries" / file
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry = next(e for e in entries if e["code"] == code)
    change(entry)
    path.write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _column(entry: dict, name: str) -> dict:
    return next(c for c in entry["columns"] if c["name"] == name)


def test_the_copy_loads(seeds):
    assert load_catalog(seeds).codes == catalog().codes


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda e: _column(e, "marriage_date").update(type="datetime64"),
         [r"zags_marriages", r"marriage_date", r"type"]),
        (lambda e: e.pop("owner_email"), [r"zags_marriages", r"owner_email", r"required"]),
        (lambda e: e.update(owner_email="nobody"), [r"zags_marriages", r"owner_email"]),
        (lambda e: e.pop("agency"), [r"zags_marriages", r"agency"]),
        (lambda e: e["columns"].append({"name": "dowry", "source": "dowry", "type": "decimal"}),
         [r"zags_marriages", r"dowry", r"unknown column"]),
        (lambda e: e.update(record_id="act_number"), [r"zags_marriages", r"record_id", r"act_number"]),
        (lambda e: _column(e, "husband_iin").update(role="husband.shoe_size"),
         [r"zags_marriages", r"husband_iin", r"role"]),
        (lambda e: e["source"].update(format="xlsx"), [r"zags_marriages", r"source.format"]),
        (lambda e: e["synth"].update(entity="spaceships"), [r"zags_marriages", r"spaceships"]),
        (lambda e: e.update(domain="astrology"), [r"zags_marriages", r"domain"]),
    ],
    ids=["unknown-type", "missing-owner", "bad-owner-email", "missing-agency", "unknown-column",
         "record-id-not-a-column", "bad-role-part", "unknown-format", "unknown-entity", "unknown-domain"],
)
def test_a_broken_entry_fails_naming_registry_and_field(seeds, change, expected):
    _edit(seeds, "civil_status.yaml", "zags_marriages", change)
    with pytest.raises(CatalogError) as err:
        load_catalog(seeds)
    for pattern in expected:
        assert re.search(pattern, str(err.value)), (pattern, str(err.value))


def test_a_duplicate_code_names_both_files(seeds):
    path = seeds / "registries" / "civil_status.yaml"
    first = yaml.safe_load(path.read_text(encoding="utf-8"))[0]
    (seeds / "registries" / "zz_extra.yaml").write_text(
        yaml.safe_dump([first], allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"duplicate code 'zags_marriages'.*civil_status\.yaml") as err:
        load_catalog(seeds)
    assert "zz_extra.yaml" in str(err.value)


def test_region_shares_must_sum_to_one(seeds):
    path = seeds / "regions.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # drop a region
    with pytest.raises(CatalogError, match=r"regions\.csv: population shares sum to"):
        load_catalog(seeds)


def test_invalid_yaml_names_the_file(seeds):
    (seeds / "registries" / "broken.yaml").write_text("- code: [unclosed\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"broken\.yaml.*not valid YAML"):
        load_catalog(seeds)
