"""ParquetColumns.slices: a file read a slice of rows at a time gives the file's rows, in order,
in slices of the asked size whatever its row groups, and the encoded columns as dictionaries."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from family_pipeline.lib.parquet_columns import ParquetColumns


@pytest.fixture
def mentions(tmp_path):
    n = 2_345
    table = pa.table({"registry": [f"reg{i % 7}" for i in range(n)], "iin": [f"{i:012d}" if i % 5 else None for i in range(n)],
                      "row": list(range(n))})
    path = tmp_path / "mentions.parquet"
    pq.write_table(table, path, row_group_size=300)
    assert pq.ParquetFile(path).metadata.num_row_groups == 8
    return path, table


@pytest.mark.parametrize("rows", [1, 299, 300, 301, 1000, 2_345, 5_000])
def test_slices_are_the_file_in_order_in_slices_of_the_asked_size(mentions, rows):
    path, table = mentions
    parts = list(ParquetColumns(path, encoded=("registry",)).slices(["row", "iin", "registry"], rows))
    starts = [start for start, _ in parts]
    assert starts == list(range(0, len(table), rows))
    assert [p.num_rows for _, p in parts[:-1]] == [rows] * (len(parts) - 1)
    assert 0 < parts[-1][1].num_rows <= rows
    assert all(p.column_names == ["row", "iin", "registry"] for _, p in parts)
    assert all(pa.types.is_dictionary(p.schema.field("registry").type) for _, p in parts)
    whole = pa.concat_tables([p for _, p in parts])
    assert whole.column("row").to_pylist() == table.column("row").to_pylist()
    assert whole.column("iin").to_pylist() == table.column("iin").to_pylist()
    assert whole.column("registry").cast(pa.string()).to_pylist() == table.column("registry").to_pylist()


def test_an_empty_file_is_one_empty_slice_with_the_columns_types(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"registry": pa.array([], pa.string()), "row": pa.array([], pa.int64())}), path)
    parts = list(ParquetColumns(path, encoded=("registry",)).slices(["row", "registry"], 10))
    assert [(start, p.num_rows, p.column_names) for start, p in parts] == [(0, 0, ["row", "registry"])]
    assert pa.types.is_dictionary(parts[0][1].schema.field("registry").type)
