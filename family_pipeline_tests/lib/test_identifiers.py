import numpy as np
import pytest

from family_pipeline.lib.identifiers import (
    birth_date_from_iin,
    check_digit,
    iin_birth_days,
    is_valid_iin,
    make_bins,
    make_iins,
    sex_from_iin,
    valid_bin_mask,
    valid_iin_mask,
)

VALID = ["871008401427", "760212350620", "061211600012"]
INVALID = ["010101600586", "821214240092"]


@pytest.mark.parametrize("iin", VALID)
def test_design_vectors_are_valid(iin):
    assert is_valid_iin(iin)


@pytest.mark.parametrize("iin", INVALID)
def test_design_vectors_are_invalid(iin):
    assert not is_valid_iin(iin)


def test_second_pass_is_used_when_first_gives_ten():
    # 061211600012: the first pass gives 10, the second pass gives the check digit 2
    d = np.array([int(c) for c in "06121160001"])
    assert (d * np.arange(1, 12)).sum() % 11 == 10
    assert check_digit("06121160001") == 2


def test_never_issued_number_has_no_check_digit():
    assert check_digit("82121424009") is None


def test_vectorised_mask_agrees_with_scalar():
    values = VALID + INVALID + [None, "12", "87100840142X", "871308401427"]
    mask = valid_iin_mask(values)
    assert mask.tolist() == [True, True, True, False, False, False, False, False, False]


def test_only_ascii_digits_are_iin_digits_and_a_slice_reads_its_own_rows():
    import pyarrow as pa

    # the first valid IIN in full-width and in Arabic-Indic digits: twelve digits, not twelve bytes
    other_scripts = ["".join(chr(0xFF10 + int(c)) for c in VALID[0]), "".join(chr(0x0660 + int(c)) for c in VALID[0])]
    assert valid_iin_mask(other_scripts + VALID[:1]).tolist() == [False, False, True]
    values = pa.array(INVALID + VALID + [None])
    for start in range(len(values)):
        assert valid_iin_mask(values.slice(start)).tolist() == [v in VALID for v in values.to_pylist()[start:]]


def test_generated_iins_are_valid_unique_and_encode_birth_and_sex():
    rng = np.random.default_rng(0)
    n = 20_000
    days = rng.integers(-25_000, 20_000, n).astype("datetime64[D]")
    sexes = np.where(rng.random(n) < 0.5, "M", "F")
    iins = make_iins(days, sexes, np.arange(n) % 9000)
    assert valid_iin_mask(iins).all()
    for i in rng.integers(0, n, 200):
        assert birth_date_from_iin(iins[i]).isoformat() == str(days[i])
        assert sex_from_iin(iins[i]) == sexes[i]


def test_generated_bins_are_valid():
    days = np.array(["2015-03-01", "2021-12-31"], dtype="datetime64[D]")
    bins = make_bins(days, np.array([4, 6]), np.array([1, 2]))
    assert valid_bin_mask(bins).all()
    assert [b[4] for b in bins] == ["4", "6"]
    assert not valid_bin_mask(["150340001230"]).any()


def test_iin_birth_days_read_the_date_and_century_each_valid_iin_encodes():
    dates = np.array(["1899-12-31", "1936-09-30", "2000-02-29", "2024-01-01"], dtype="datetime64[D]")
    iins = make_iins(dates, np.array(["M", "F", "F", "M"]), np.array([1, 2, 3, 4]))
    broken = iins[1][:11] + str((int(iins[1][11]) + 1) % 10)  # check digit off
    days, valid = iin_birth_days(np.array([*iins, broken, "12345", None], dtype=object))
    assert valid.tolist() == [True] * 4 + [False] * 3
    assert (days[:4] == dates.astype(np.int64)).all()
