"""Lake tables written whole or a slice of rows at a time are the same file."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from family_pipeline.lib.lake import ROW_GROUP, write_columns, write_parquet


def test_a_table_written_by_slices_is_the_file_written_whole(tmp_path):
    n = 2 * ROW_GROUP + 12_345  # three slices of one row group each, the last one short
    rng = np.random.default_rng(3)
    registry = pa.array(rng.choice(["gbd_fl", "isj_livestock", "kgd_income_tax"], n)).dictionary_encode()
    record = pa.chunked_array([pa.array([str(k) for k in range(n)])])
    ids, probability = rng.integers(0, 1 << 62, n), rng.random(n)
    columns = {"registry": registry, "record_id": record, "person_id": ids, "match_probability": probability}
    types = {"registry": pa.large_string(), "record_id": pa.large_string()}
    whole = write_parquet(tmp_path / "whole.parquet", pa.table({
        "registry": registry.cast(pa.large_string()), "record_id": record.cast(pa.large_string()),
        "person_id": ids, "match_probability": probability}))
    sliced = write_columns(tmp_path / "sliced.parquet", columns, types, rows_per_slice=ROW_GROUP)
    assert sliced.read_bytes() == whole.read_bytes()
    assert pq.ParquetFile(sliced).metadata.num_row_groups == 3
    assert not list(tmp_path.glob("*.tmp"))
    small = write_columns(tmp_path / "small.parquet", {"a": np.arange(5)})
    assert pq.read_table(small).column("a").to_pylist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="multiple"):
        write_columns(tmp_path / "odd.parquet", columns, types, rows_per_slice=ROW_GROUP + 1)
