"""Kazakh IIN and BIN: check digit, validation and generation, scalar and vectorised.

IIN = YYMMDD + century/sex digit + 4-digit serial + check digit. The check digit is
sum(d_i * w_i) mod 11 with weights 1..11; if that is 10, weights 3..11,1,2 are used; if it is
10 again, the number is never issued. A BIN uses the same check digit.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: the check digit's two weightings (int16: a weighted sum of 11 digits is at most 594)
W1 = np.arange(1, 12, dtype=np.int16)
W2 = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2], dtype=np.int16)

#: 7th digit -> (century start, sex)
CENTURY_SEX = {1: (1800, "M"), 2: (1800, "F"), 3: (1900, "M"), 4: (1900, "F"), 5: (2000, "M"), 6: (2000, "F")}


def check_digit(first11: str) -> int | None:
    """Check digit for 11 leading digits, or None when such a number is never issued."""
    d = np.frombuffer(first11.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    c = int((d * W1).sum() % 11)
    if c == 10:
        c = int((d * W2).sum() % 11)
        if c == 10:
            return None
    return c


def is_valid_iin(value: str) -> bool:
    if len(value) != 12 or not value.isdigit():
        return False
    c = check_digit(value[:11])
    return c is not None and c == int(value[11])


def check_digits_array(first11: np.ndarray) -> np.ndarray:
    """Vectorised check digits for an (n, 11) int array of digits; -1 where never issued. The
    weighted sums (at most 594) are taken in int16, as one matrix product per weighting."""
    digits = np.asarray(first11).astype(np.int16, copy=False)
    c = digits @ W1 % 11
    c2 = digits @ W2 % 11
    out = np.where(c == 10, c2, c)
    return np.where(out == 10, -1, out)


def digits_matrix(values: pa.Array | np.ndarray | list) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) int8 digit matrix (zeros where a value is not exactly 12 ASCII digits) and a mask
    of the values that are."""
    arr = pa.array(values, type=pa.string()) if not isinstance(values, pa.Array) else values.cast(pa.string())
    # twelve bytes, each an ASCII digit (utf8_is_digit takes any script's digits: "１２…")
    ok = pc.fill_null(pc.and_(pc.equal(pc.binary_length(arr), 12), pc.ascii_is_decimal(arr)), False)
    ok_np = ok.to_numpy(zero_copy_only=False)
    if len(arr) == 0:
        return np.zeros((0, 12), np.int8), ok_np
    # every value 12 bytes once the others are replaced: a fixed-size binary, one byte per digit
    filled = pc.if_else(ok, arr, pa.scalar("000000000000")).cast(pa.binary(12))
    raw = np.frombuffer(filled.buffers()[1], dtype=np.int8, count=12 * (filled.offset + len(filled)))
    return raw[12 * filled.offset:].reshape(-1, 12) - 48, ok_np


def valid_iin_mask(values) -> np.ndarray:
    """Boolean mask: 12 digits, a known century/sex digit, a real date and a correct check digit."""
    return _valid_iins(*digits_matrix(values))


def _valid_iins(mat: np.ndarray, ok: np.ndarray) -> np.ndarray:
    if len(mat) == 0:
        return ok
    cd = check_digits_array(mat[:, :11])
    good = ok & (cd >= 0) & (cd == mat[:, 11])
    return good & _plausible_birth(mat)


def valid_bin_mask(values) -> np.ndarray:
    """BIN: 12 digits and a correct check digit (YYMM registration prefix, type digit 4/5/6)."""
    mat, ok = digits_matrix(values)
    if len(mat) == 0:
        return ok
    cd = check_digits_array(mat[:, :11])
    month = mat[:, 2] * 10 + mat[:, 3]
    return ok & (cd >= 0) & (cd == mat[:, 11]) & (month >= 1) & (month <= 12) & np.isin(mat[:, 4], (4, 5, 6))


def _birth_parts(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day, century/sex digit) an (n, 12) IIN digit matrix encodes; the year is
    meaningless where the century digit is not 1-6."""
    cs = mat[:, 6]
    century = np.select([cs <= 2, cs <= 4, cs <= 6], [1800, 1900, 2000], default=-1)
    return century + mat[:, 0] * 10 + mat[:, 1], mat[:, 2] * 10 + mat[:, 3], mat[:, 4] * 10 + mat[:, 5], cs


def _plausible_birth(mat: np.ndarray) -> np.ndarray:
    year, mm, dd, cs = _birth_parts(mat)
    ok = (cs >= 1) & (cs <= 6) & (mm >= 1) & (mm <= 12) & (dd >= 1)
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mm - 1, 0, 11)]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = days_in_month + ((mm == 2) & leap)
    return ok & (dd <= days_in_month)


def iin_birth_days(values) -> tuple[np.ndarray, np.ndarray]:
    """(days since 1970 of the birth date each IIN encodes, mask of IINs that pass
    ``valid_iin_mask``); days are 0 where the mask is False."""
    mat, ok = digits_matrix(values)
    if len(mat) == 0:
        return np.zeros(0, np.int64), ok
    valid = _valid_iins(mat, ok)
    year, month, day, _ = _birth_parts(mat)
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]").astype(np.int64) + day - 1
    return np.where(valid, days, 0), valid


def birth_date_from_iin(iin: str) -> dt.date | None:
    if not is_valid_iin(iin):
        return None
    century, _ = CENTURY_SEX[int(iin[6])]
    return dt.date(century + int(iin[:2]), int(iin[2:4]), int(iin[4:6]))


def sex_from_iin(iin: str) -> str | None:
    if len(iin) < 7 or not iin[6].isdigit() or int(iin[6]) not in CENTURY_SEX:
        return None
    return CENTURY_SEX[int(iin[6])][1]


def make_iins(birth_dates: np.ndarray, sexes: np.ndarray, serials: np.ndarray) -> np.ndarray:
    """Issue IINs: birth dates (datetime64[D]), sexes ('M'/'F'), serials 0..9999.

    A serial whose check digit would be 10 twice is skipped to the next one, as the
    issuing authority does. Returns an array of 12-character strings.
    """
    bd = birth_dates.astype("datetime64[D]")
    years = bd.astype("datetime64[Y]").astype(np.int64) + 1970
    months = (bd.astype("datetime64[M]").astype(np.int64) % 12) + 1
    days = (bd - bd.astype("datetime64[M]")).astype(np.int64) + 1
    century = np.where(years < 1900, 1, np.where(years < 2000, 3, 5))
    csex = century + (np.asarray(sexes) == "F")
    serial = np.asarray(serials, dtype=np.int64) % 10000
    yy = years % 100
    head = np.stack(
        [yy // 10, yy % 10, months // 10, months % 10, days // 10, days % 10, csex,
         serial // 1000, (serial // 100) % 10, (serial // 10) % 10, serial % 10],
        axis=1,
    )
    cd = check_digits_array(head)
    bad = cd < 0
    while bad.any():  # never-issued numbers: move to the next serial
        serial = np.where(bad, (serial + 1) % 10000, serial)
        head[:, 7] = serial // 1000
        head[:, 8] = (serial // 100) % 10
        head[:, 9] = (serial // 10) % 10
        head[:, 10] = serial % 10
        cd = check_digits_array(head)
        bad = cd < 0
    digits = np.concatenate([head, cd[:, None]], axis=1).astype(np.uint8) + 48
    return digits.view("S12").ravel().astype(str)


def make_bins(reg_dates: np.ndarray, kinds: np.ndarray, serials: np.ndarray) -> np.ndarray:
    """Issue BINs: YYMM of registration, type digit (4 resident legal entity, 5 non-resident,
    6 sole proprietor), a 0 attribute digit, a 5-digit serial and the check digit."""
    rd = reg_dates.astype("datetime64[D]")
    years = rd.astype("datetime64[Y]").astype(np.int64) + 1970
    months = (rd.astype("datetime64[M]").astype(np.int64) % 12) + 1
    yy = years % 100
    serial = np.asarray(serials, dtype=np.int64) % 100000
    head = np.stack(
        [yy // 10, yy % 10, months // 10, months % 10, np.asarray(kinds, dtype=np.int64),
         np.zeros_like(yy), serial // 10000, (serial // 1000) % 10, (serial // 100) % 10,
         (serial // 10) % 10, serial % 10],
        axis=1,
    )
    cd = check_digits_array(head)
    bad = cd < 0
    while bad.any():
        serial = np.where(bad, (serial + 1) % 100000, serial)
        for i, div in enumerate((10000, 1000, 100, 10, 1)):
            head[:, 6 + i] = (serial // div) % 10
        cd = check_digits_array(head)
        bad = cd < 0
    digits = np.concatenate([head, cd[:, None]], axis=1).astype(np.uint8) + 48
    return digits.view("S12").ravel().astype(str)
