"""Reading agency exports: formats, encodings, value codes, and the quarantine with its reasons.

Each test writes a small export by hand, the way an agency would, and ingests it through a scratch
registry entry — so every expectation below is known exactly.
"""

import json

import numpy as np

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from family_pipeline.catalog import RegistrySpec, catalog
from family_pipeline.ingestion import RegistryFileError, ingest_registry
from family_pipeline.lib.identifiers import make_iins
from family_pipeline.lib.lake import Lake

#: valid IINs; the second is born in 2005, so it starts with a zero a spreadsheet would drop
IINS = [str(x) for x in make_iins(np.array(["1985-02-01", "2005-12-31", "1960-03-03", "1977-07-07"], dtype="datetime64[D]"),
                                  np.array(["F", "M", "M", "F"]), np.array([101, 202, 303, 404]))]


def registry(source: dict, **overrides) -> RegistrySpec:
    """A scratch registry with the common column kinds; agency columns are upper-case."""
    entry = {
        "code": "test_reg", "name_ru": "Тест", "name_en": "Test", "agency": "Test agency",
        "owner_email": "owner@test.example.kz", "domain": "population", "cadence": "daily",
        "source": source, "record_id": "record_id",
        "columns": [
            {"name": "record_id", "source": "ID", "type": "string", "required": True, "unique": True},
            {"name": "iin", "source": "IIN", "type": "iin", "role": "subject.iin"},
            {"name": "last_name", "source": "FAM", "type": "name", "role": "subject.last_name"},
            {"name": "birth_date", "source": "DR", "type": "date", "role": "subject.birth_date"},
            {"name": "sex", "source": "POL", "type": "sex", "codes": {"1": "M", "2": "F"}},
            {"name": "amount", "source": "SUMMA", "type": "decimal", "min": 0, "max": 10_000_000},
            {"name": "children", "source": "DETI", "type": "int", "min": 0, "max": 20},
            {"name": "status", "source": "STATUS", "type": "category", "values": ["active", "closed"],
             "codes": {"А": "active", "З": "closed"}},
            {"name": "disabled", "source": "INV", "type": "bool"},
            {"name": "region", "source": "OBL", "type": "region"},
        ],
        "synth": {"entity": "persons"},
    }
    entry.update(overrides)
    return RegistrySpec.model_validate(entry)


HEADER = ["ID", "IIN", "FAM", "DR", "POL", "SUMMA", "DETI", "STATUS", "INV", "OBL"]


def write_csv(lake: Lake, spec: RegistrySpec, rows: list[list[str]]) -> None:
    d = spec.source.delimiter
    text = "\n".join(d.join(r) for r in [HEADER, *rows]) + "\n"
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / spec.file_name).write_bytes(text.encode(spec.source.encoding))


def clean_rows(lake: Lake, spec: RegistrySpec) -> list[dict]:
    return pq.read_table(lake.table("registries", spec.code)).to_pylist()


def quarantine(lake: Lake, spec: RegistrySpec) -> list[dict]:
    return pq.read_table(lake.table("quarantine", spec.code)).to_pylist()


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(tmp_path)


def test_cp1251_semicolons_decimal_comma_dates_codes_and_kato(lake):
    spec = registry({"format": "csv", "encoding": "cp1251", "delimiter": ";", "decimal": ",",
                     "date_format": "%d.%m.%Y", "region_format": "kato"})
    write_csv(lake, spec, [
        ["R1", IINS[0], "Абенова", "01.02.1985", "2", "12 345,50", "3", "А", "да", "751000000"],
        ["R2", IINS[1][1:], "Иванов  Пётр", "31.12.1960", "1", "0", "0", "З",
         "нет", "11"],
    ])
    result = ingest_registry(spec, lake, catalog())
    assert (result.rows_read, result.rows_clean, result.rows_quarantined) == (2, 2, 0)
    assert IINS[1].startswith("0")
    a, b = clean_rows(lake, spec)
    assert a["last_name"] == "Абенова" and a["sex"] == "F" and a["amount"] == 12345.5
    assert str(a["birth_date"]) == "1985-02-01" and a["status"] == "active" and a["disabled"] is True
    assert a["region"] == "KZ-75" and a["iin"] == IINS[0] and a["iin_valid"] is True
    assert b["last_name"] == "Иванов Пётр" and b["region"] == "KZ-11" and b["disabled"] is False
    assert b["iin"] == IINS[1]  # an 11-digit IIN (a spreadsheet ate the leading zero) is padded back


def test_utf16_and_utf8_bom(lake):
    for encoding in ("utf-16", "utf-8-sig"):
        spec = registry({"format": "csv", "encoding": encoding, "region_format": "name_ru"})
        write_csv(lake, spec, [["R1", IINS[0], "Қасымов", "1990-05-06", "1", "100.25", "1", "active", "1",
                                "Акмолинская область"]])
        result = ingest_registry(spec, lake, catalog())
        assert result.rows_clean == 1, encoding
        row = clean_rows(lake, spec)[0]
        assert row["record_id"] == "R1" and row["last_name"] == "Қасымов" and row["region"] == "KZ-11"


def test_parquet_and_jsonl(lake):
    values = {"ID": ["R1", "R2"], "IIN": [IINS[0], IINS[1]], "FAM": ["Ким", "Ли"], "DR": ["2001-01-01", "2002-02-02"],
              "POL": ["1", "2"], "SUMMA": ["5", "6.5"], "DETI": ["0", "2"], "STATUS": ["active", "closed"],
              "INV": ["0", "1"], "OBL": ["KZ-75", "kz-71"]}
    spec = registry({"format": "parquet"})
    lake.landing_dir(spec.code).mkdir(parents=True)
    pq.write_table(pa.table(values), lake.landing_dir(spec.code) / spec.file_name)
    assert ingest_registry(spec, lake, catalog()).rows_clean == 2
    assert [r["region"] for r in clean_rows(lake, spec)] == ["KZ-75", "KZ-71"]

    spec = registry({"format": "jsonl"})
    lines = [json.dumps({k: v[i] for k, v in values.items()}, ensure_ascii=False) for i in range(2)]
    lines.insert(1, '{"ID": "R9", "IIN": "broken')  # a line cut in the middle
    (lake.landing_dir(spec.code) / spec.file_name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest_registry(spec, lake, catalog())
    assert (result.rows_read, result.rows_clean, result.rows_quarantined) == (3, 2, 1)
    q = quarantine(lake, spec)
    assert q[0]["reason"] == "malformed_row" and q[0]["_row"] == 2 and "R9" in q[0]["raw"]


def test_every_quarantine_reason_and_nothing_lost(lake):
    spec = registry({"format": "csv"})
    bad_check = IINS[2][:-1] + str((int(IINS[2][-1]) + 1) % 10)
    good = ["0", IINS[0], "Ок", "2000-01-01", "1", "1", "1", "active", "1", "KZ-75"]

    def row(rid: str, **change) -> list[str]:
        r = list(good)
        r[0] = rid
        for col, value in change.items():
            r[HEADER.index(col)] = value
        return r

    rows = [
        row("OK1"),
        row("OK2", IIN=bad_check),          # a bad check digit is kept, flagged, for resolution
        row("", FAM="Без номера"),           # missing_required
        row("Q2", IIN="12345"),             # invalid_identifier
        row("Q3", DR="2000-13-45"),         # unparsable_date
        row("Q4", SUMMA="12.5.1"),          # unparsable_number
        row("Q5", DETI="1.5"),              # unparsable_number (an int column)
        row("Q6", POL="3"),                 # value_not_allowed
        row("Q7", OBL="KZ-99"),             # value_not_allowed (no such region)
        row("Q8", DETI="45"),               # out_of_range
        row("Q9", SUMMA="-10"),             # out_of_range
        row("OK1", FAM="Повтор"),           # duplicate_key
        "Q10,too,few",                      # malformed_row
    ]
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True)
    text = ",".join(HEADER) + "\n" + "\n".join(r if isinstance(r, str) else ",".join(r) for r in rows) + "\n"
    (folder / spec.file_name).write_text(text, encoding="utf-8")
    result = ingest_registry(spec, lake, catalog())
    assert result.rows_read == len(rows) == result.rows_clean + result.rows_quarantined
    assert result.quarantined_by_reason == {
        "duplicate_key": 1, "invalid_identifier": 1, "malformed_row": 1, "missing_required": 1,
        "out_of_range": 2, "unparsable_date": 1, "unparsable_number": 2, "value_not_allowed": 2,
    }
    clean = {r["record_id"]: r for r in clean_rows(lake, spec)}
    assert set(clean) == {"OK1", "OK2"}
    assert clean["OK1"]["last_name"] == "Ок"  # the first of two duplicates is kept
    assert clean["OK2"]["iin"] == bad_check and clean["OK2"]["iin_valid"] is False
    q = {r["_row"]: r for r in quarantine(lake, spec)}
    assert q[4]["reason"] == "invalid_identifier" and q[4]["column"] == "iin" and q[4]["record_id"] == "Q2"
    assert q[13]["reason"] == "malformed_row" and q[13]["record_id"] == "Q10" and q[13]["raw"] == "Q10,too,few"


# ---------------------------------------------------------------------------- broken files
def _good_csv(lake: Lake, **source) -> RegistrySpec:
    spec = registry({"format": "csv", **source})
    write_csv(lake, spec, [["R1", IINS[0], "Сергеева", "2000-01-01", "1", "1", "1", "active", "1", "KZ-75"]])
    return spec


def test_missing_file_names_the_file(lake):
    spec = registry({"format": "csv"})
    with pytest.raises(RegistryFileError, match=r"test_reg\.csv: file not found"):
        ingest_registry(spec, lake, catalog())


def test_truncated_parquet_names_the_file(lake):
    spec = registry({"format": "parquet"})
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True)
    pq.write_table(pa.table({h: ["x"] * 1000 for h in HEADER}), folder / spec.file_name)
    data = (folder / spec.file_name).read_bytes()
    (folder / spec.file_name).write_bytes(data[: len(data) // 2])
    with pytest.raises(RegistryFileError, match=r"test_reg\.parquet: not a readable Parquet file"):
        ingest_registry(spec, lake, catalog())


def test_cp1251_file_declared_utf8(lake):
    spec = _good_csv(lake, encoding="cp1251")
    ingest_registry(spec, lake, catalog())  # fine as declared
    wrong = registry({"format": "csv", "encoding": "utf-8"})
    with pytest.raises(RegistryFileError, match=r"test_reg\.csv: not valid utf-8 at byte \d+.*cp1251"):
        ingest_registry(wrong, lake, catalog())


def test_utf8_file_declared_cp1251(lake):
    _good_csv(lake, encoding="utf-8")
    wrong = registry({"format": "csv", "encoding": "cp1251"})
    # every byte decodes in cp1251, so the file would silently turn into mojibake; it must not
    with pytest.raises(RegistryFileError, match=r"test_reg\.csv: declared cp1251 but the file is UTF-8"):
        ingest_registry(wrong, lake, catalog())


def test_missing_columns_name_them(lake):
    spec = registry({"format": "csv"})
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True)
    (folder / spec.file_name).write_text("ID,IIN\nR1,1\n", encoding="utf-8")
    with pytest.raises(RegistryFileError, match=r"expected agency column\(s\) missing: FAM, DR, POL"):
        ingest_registry(spec, lake, catalog())


def test_empty_csv_is_an_error_but_empty_jsonl_is_an_empty_export(lake):
    spec = registry({"format": "csv"})
    lake.landing_dir(spec.code).mkdir(parents=True)
    (lake.landing_dir(spec.code) / spec.file_name).write_bytes(b"")
    with pytest.raises(RegistryFileError, match="empty"):
        ingest_registry(spec, lake, catalog())
    spec = registry({"format": "jsonl"})
    (lake.landing_dir(spec.code) / spec.file_name).write_bytes(b"")
    assert ingest_registry(spec, lake, catalog()).rows_read == 0


# ---------------------------------------------------------------------------- database source
def _database_rows() -> list[dict]:
    return [{"ID": "D1", "IIN": IINS[0], "FAM": "Нұрланова", "DR": "1999-09-09", "POL": "2", "SUMMA": "10",
             "DETI": "0", "STATUS": "active", "INV": "0", "OBL": "KZ-75"},
            {"ID": "D2", "IIN": IINS[1], "FAM": "Петров", "DR": "not a date", "POL": "1", "SUMMA": "10",
             "DETI": "0", "STATUS": "active", "INV": "0", "OBL": "KZ-75"}]


def _fill_database(url: str) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table("registry_table", meta, *[sa.Column(h, sa.Text) for h in HEADER])
    meta.create_all(engine)
    with engine.begin() as con:
        con.execute(table.insert(), _database_rows())
    engine.dispose()


def _check_database_ingest(lake: Lake, url: str) -> None:
    spec = registry({"format": "csv", "location": "database", "table": "registry_table"})
    result = ingest_registry(spec, lake, catalog(), url)
    assert (result.rows_read, result.rows_clean, result.rows_quarantined) == (2, 1, 1)
    assert clean_rows(lake, spec)[0]["last_name"] == "Нұрланова"
    assert quarantine(lake, spec)[0]["reason"] == "unparsable_date"
    missing = registry({"format": "csv", "location": "database", "table": "no_such_table"})
    with pytest.raises(RegistryFileError, match=r"table no_such_table: table not found"):
        ingest_registry(missing, lake, catalog(), url)


def test_database_registry_on_sqlite(lake, tmp_path):
    url = f"sqlite:///{tmp_path / 'agency.sqlite'}"
    _fill_database(url)
    _check_database_ingest(lake, url)


@pytest.mark.postgres
def test_database_registry_on_postgres(lake, postgres_db):
    _, url = postgres_db
    _fill_database(url)
    _check_database_ingest(lake, url)


def test_unreachable_database_is_a_clear_error_without_the_password(lake):
    spec = registry({"format": "csv", "location": "database", "table": "t"})
    url = "postgresql+psycopg2://agency:s3cret@127.0.0.1:1/registry"
    with pytest.raises(RegistryFileError, match=r"database unreachable") as err:
        ingest_registry(spec, lake, catalog(), url)
    assert "s3cret" not in str(err.value)
