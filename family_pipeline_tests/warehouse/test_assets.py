"""The warehouse assets: one per enabled mart, the same graph whatever engine is configured, and
a materialization that publishes the mart and reports counts without personal data."""

import json
import re

import dagster as dg
import pytest

from family_pipeline.defs.warehouse import GROUP, WAREHOUSE_URL_ENV, mart_key
from family_pipeline.warehouse import Warehouse, embedded_url, mart_catalog
from family_pipeline_tests.conftest import run_on_instance
from family_pipeline_tests.warehouse.conftest import truth_persons


def _warehouse_specs(monkeypatch, url: str | None) -> dict:
    from family_pipeline.definitions import defs

    if url:
        monkeypatch.setenv(WAREHOUSE_URL_ENV, url)
    else:
        monkeypatch.delenv(WAREHOUSE_URL_ENV, raising=False)
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    url = definitions.resources["warehouse"].url
    return {"resource url": (type(url).__name__, url.env_var_name if isinstance(url, dg.EnvVar) else url)} | {key: (graph.get(key).group_name, graph.get(key).kinds,
                  sorted(d.to_user_string() for d in graph.get(key).parent_keys), graph.get(key).owners)
            for key in graph.get_all_asset_keys() if key.path[0] == GROUP}, graph


def test_one_asset_per_enabled_mart_and_a_graph_that_ignores_the_engine(monkeypatch):
    embedded, graph = _warehouse_specs(monkeypatch, None)
    postgres, _ = _warehouse_specs(monkeypatch, "postgresql+psycopg2://someone:secret@db.example:5432/warehouse")
    # the URL is read when the definitions are built, and kept as an EnvVar (never shown in the UI)
    assert embedded.pop("resource url") == ("str", "")
    assert postgres.pop("resource url") == ("EnvVar", WAREHOUSE_URL_ENV)
    assert embedded == postgres  # kinds, deps and groups do not follow the configuration
    enabled = mart_catalog().enabled()
    assert set(embedded) == {mart_key(m.name) for m in enabled}
    for mart in enabled:
        group, kinds, parents, owners = embedded[mart_key(mart.name)]
        assert group == GROUP and kinds == {"sql"} and owners == ["team:data-engineering"]
        if mart.upstream:
            upstream = dg.AssetKey(list(mart.upstream))
            # an enabled mart is published from an asset this code location really materializes
            assert parents == [upstream.to_user_string()]
            assert graph.get(upstream).is_materializable, f"{mart.name}: upstream {upstream} is not an asset here"


def test_materialized_marts_report_counts_and_nothing_personal(lake, small_country, tmp_path):
    keys = [mart_key("persons"), mart_key("dq_alerts")]
    # the default snapshot is today's: the second run replaces the first one's
    result, instance = run_on_instance(lake.root, tmp_path / "home", "family_map", keys)
    assert result.success
    again, _ = run_on_instance(lake.root, tmp_path / "home", "family_map", keys)
    assert again.success
    truth = truth_persons(small_country)
    materialization = instance.get_latest_materialization_event(mart_key("persons")).asset_materialization
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["dagster/row_count"] == len(truth) and meta["dagster/table_name"] == "restricted.persons"
    assert meta["replaced_rows"] == len(truth) and meta["snapshots_kept"] == 1  # the rerun replaced its snapshot
    assert meta["engine"] == "duckdb" and meta["bulk_path"] == "duckdb insert-select"
    with Warehouse(embedded_url(lake.warehouse_path)) as warehouse:
        assert warehouse.tables("restricted") == ["persons"]
        assert "dq_alerts" in warehouse.tables("analytics")
        snapshots = warehouse.snapshots(mart_catalog().mart("persons"))
        assert [s["run_ids"] for s in snapshots.values()] == [[again.run_id]]
    # the metadata and logs of both runs hold no IIN and no name
    text = ""
    for run_id in (result.run_id, again.run_id):
        for entry in instance.all_logs(run_id):
            text += json.dumps(json.loads(entry.to_json()), ensure_ascii=False) + "\n"
    assert not set(re.findall(r"\d{12}", text)) & set(truth.iin)
    words = set(re.findall(r"\w+", text))
    assert not words & (set(truth.last_name) | set(truth.first_name))


@pytest.mark.postgres
def test_the_url_from_the_environment_sends_marts_to_postgres(lake, tmp_path, postgres_db, monkeypatch):
    # a plain postgresql:// URL is enough (psycopg2 is chosen for COPY)
    monkeypatch.setenv(WAREHOUSE_URL_ENV, postgres_db[1].replace("postgresql+psycopg2://", "postgresql://"))
    result, instance = run_on_instance(lake.root, tmp_path / "home", "family_map", [mart_key("persons")])
    assert result.success
    meta = instance.get_latest_materialization_event(mart_key("persons")).asset_materialization.metadata
    assert meta["engine"].value == "postgresql" and meta["bulk_path"].value == "postgresql copy"
    with Warehouse(postgres_db[1]) as warehouse:
        assert warehouse.tables("restricted") == ["persons"]
        assert len(warehouse.read("restricted.persons")) == meta["dagster/row_count"].value
    assert not lake.warehouse_path.exists()  # nothing went to the embedded file
