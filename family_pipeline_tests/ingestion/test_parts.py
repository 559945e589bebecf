"""An export in parts (a country generated in shards): the manifest lists the part files, each a
whole file in the agency's format; ingestion reads them as one export whose rows reconcile."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.ingestion import RegistryFileError, ingest_registry
from family_pipeline.lib.lake import Lake
from family_pipeline.synth import generate_country
from family_pipeline_tests.ingestion.test_formats import HEADER, IINS, quarantine, registry

#: one registry of every format and encoding the catalog uses, and both database registries
REGISTRIES = ["military_register", "zags_deaths", "asp_payments", "gbd_ul_legal_entities", "zags_marriages",
              "sole_proprietors", "pkb_credit_bureau", "otbasy_housing_queue", "isj_livestock"]


def _write_parts(lake: Lake, spec, parts: list[list[str]]) -> None:
    """Each part with its own header (and BOM, for UTF-16), as the synthetic agency writes them."""
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True, exist_ok=True)
    d = spec.source.delimiter
    listed = []
    for i, lines in enumerate(parts):
        name = spec.file_name if i == 0 else spec.file_name.replace(".csv", f".part{i:04d}.csv")
        text = "\n".join([d.join(HEADER), *lines]) + "\n"
        (folder / name).write_bytes(text.encode(spec.source.encoding))
        listed.append({"file": name, "rows": len(lines)})
    manifest = {"registry": spec.code, "file": spec.file_name, "rows": sum(p["rows"] for p in listed),
                "extracted_at": "2026-11-01T01:00:00", "parts": listed}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _row(rid: str, iin: str = IINS[0]) -> list[str]:
    return [rid, iin, "Сергеева", "2000-01-01", "2", "1", "1", "active", "1", "KZ-75"]


@pytest.mark.parametrize("encoding", ["utf-16", "cp1251", "utf-8-sig"])
def test_parts_are_one_export_with_running_row_numbers(tmp_path, encoding):
    lake = Lake(tmp_path)
    spec = registry({"format": "csv", "encoding": encoding, "delimiter": ";"})
    broken = "R4;" + IINS[2] + ";Иванов"  # cut short by the agency's exporter
    _write_parts(lake, spec, [[";".join(_row("R1")), ";".join(_row("R2"))],
                              [";".join(_row("R3")), broken, ";".join(_row("R5"))]])
    result = ingest_registry(spec, lake, catalog())
    assert (result.rows_read, result.rows_quarantined) == (5, 1)
    assert result.extracted_at == "2026-11-01T01:00:00"
    clean = pq.read_table(lake.table("registries", spec.code)).to_pandas()
    assert sorted(clean.record_id) == ["R1", "R2", "R3", "R5"]
    assert [q["_row"] for q in quarantine(lake, spec)] == [4]  # row 2 of the second part


def test_missing_or_broken_part_names_the_part(tmp_path):
    lake = Lake(tmp_path)
    spec = registry({"format": "csv"})
    _write_parts(lake, spec, [[",".join(_row("R1"))], [",".join(_row("R2"))]])
    part = lake.landing_dir(spec.code) / "test_reg.part0001.csv"
    part.write_bytes(b"")
    with pytest.raises(RegistryFileError, match=r"test_reg\.part0001\.csv: file is empty"):
        ingest_registry(spec, lake, catalog())
    part.unlink()
    with pytest.raises(RegistryFileError, match=r"test_reg\.part0001\.csv: file not found"):
        ingest_registry(spec, lake, catalog())
    part.write_text(",".join(HEADER[:-1]) + "\n" + ",".join(_row("R2")[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(RegistryFileError, match=r"test_reg\.part0001\.csv: expected agency column\(s\) missing: OBL"):
        ingest_registry(spec, lake, catalog())


def test_a_sharded_country_is_ingested_whole(tmp_path):
    generate_country(tmp_path, persons=2_400, seed=5, progress=False, registries=REGISTRIES, shard_size=800,
                     workers=1)
    lake = Lake(tmp_path)
    mentions = pd.read_parquet(lake.truth("mentions"))
    for code in REGISTRIES:
        spec = catalog().registry(code)
        manifest = json.loads((lake.landing_dir(code) / "manifest.json").read_text(encoding="utf-8"))
        if spec.source.location == "landing":
            assert len(manifest["parts"]) == 3, code
        result = ingest_registry(spec, lake, catalog())
        assert result.rows_read == manifest["rows"] == result.rows_clean + result.rows_quarantined, code
        assert result.rows_read > 0, code
        clean = pq.read_table(lake.table("registries", code), columns=["record_id"]).column(0).to_pylist()
        assert len(set(clean)) == len(clean), code  # record ids unique across the parts
        truth = set(mentions.loc[mentions.registry == code, "record_id"])
        if truth:
            assert set(clean) <= truth, code
