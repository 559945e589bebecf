"""The mart catalog: the shipped one holds the issue's marts in the right schemas; a wrong one
fails loudly, naming the mart and the field."""

import textwrap

import pytest

from family_pipeline.warehouse import (
    ANALYTICS,
    RESTRICTED,
    MartCatalogError,
    forbidden_analytics_columns,
    load_marts,
)

ISSUE_MARTS = {"persons": RESTRICTED, "families": ANALYTICS, "family_features": ANALYTICS,
               "family_scores": ANALYTICS, "benefit_assignments": ANALYTICS, "juror_longlist": ANALYTICS,
               "housing_queue_audit": ANALYTICS, "dq_alerts": ANALYTICS}


def test_shipped_catalog_has_every_mart_in_its_schema():
    catalog = load_marts()
    assert {m.name: m.schema_name for m in catalog.marts} == ISSUE_MARTS
    assert catalog.mart("persons").source.stage == "resolution"
    assert catalog.mart("dq_alerts").source.database == "alerts"
    assert catalog.mart("families").pseudonymize == {"head_person_id": "head_person_key"}
    assert catalog.mart("juror_longlist").pseudonymize == {"person_id": "person_key"}
    assert all(m.enabled for m in catalog.marts)
    for mart in catalog.marts:
        if mart.schema_name == ANALYTICS:
            # every identifying column a stage might add is dropped on the way
            assert {"iin", "last_name", "first_name", "patronymic", "address"} <= set(mart.drop) or mart.source.database


def test_identifying_column_names():
    flagged = forbidden_analytics_columns(
        ["iin", "head_iin", "iin_disputed", "last_name", "first_name_source", "patronymic", "full_name",
         "surname", "address", "address_id", "name", "fio",
         "person_key", "family_id", "region", "settlement_name", "registry_name", "income_pc", "ae_reasons"])
    assert flagged == ["iin", "head_iin", "iin_disputed", "last_name", "first_name_source", "patronymic",
                       "full_name", "surname", "address", "address_id", "name", "fio"]


def _write(tmp_path, body: str):
    path = tmp_path / "marts.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


GOOD = """
marts:
  - name: families
    schema: analytics
    description: families
    source: {stage: families, table: families}
    upstream: [families, families]
    pseudonymize: {head_person_id: head_person_key}
"""


def test_a_valid_catalog_loads(tmp_path):
    catalog = load_marts(_write(tmp_path, GOOD))
    assert catalog.mart("families").table_name == "analytics.families"
    assert catalog.snapshots_kept(catalog.mart("families")) == 7


@pytest.mark.parametrize("change, message", [
    # an analytics mart that would publish a surname
    ("    columns: [family_id, last_name]\n", "mart 'families'.*identifying columns \\['last_name'\\]"),
    # a keyed hash published under an identifying name
    ("    pseudonymize: {head_person_id: head_iin}\n", "mart 'families'.*identifying columns \\['head_iin'\\]"),
    ("    drop: [head_person_id]\n", "both dropped and pseudonymized"),
    ("    keep_snapshots: 0\n", "mart 'families': keep_snapshots"),
    ("    owner: someone\n", "mart 'families': owner"),
])
def test_a_wrong_mart_fails_loudly(tmp_path, change, message):
    body = GOOD.replace("    pseudonymize: {head_person_id: head_person_key}\n",
                        change if "pseudonymize" in change else "    pseudonymize: {head_person_id: head_person_key}\n" + change)
    with pytest.raises(MartCatalogError, match=message):
        load_marts(_write(tmp_path, body))


def test_unknown_schema_and_missing_upstream_and_repeats(tmp_path):
    with pytest.raises(MartCatalogError, match="mart 'families': schema"):
        load_marts(_write(tmp_path, GOOD.replace("schema: analytics", "schema: public")))
    with pytest.raises(MartCatalogError, match="mart 'families'.*upstream"):
        load_marts(_write(tmp_path, GOOD.replace("    upstream: [families, families]\n", "")))
    with pytest.raises(MartCatalogError, match="repeat.*families"):
        load_marts(_write(tmp_path, GOOD + GOOD.replace("marts:\n", "")))
    with pytest.raises(MartCatalogError, match="'marts' list"):
        load_marts(_write(tmp_path, "keep_snapshots: 3\n"))
