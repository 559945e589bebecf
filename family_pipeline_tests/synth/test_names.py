"""The synthetic country's names: common names first, a long tail behind them, and namesakes as
rare as in a country of that size rather than growing with the square of its people."""

import numpy as np
import pytest

from family_pipeline.catalog.load import default_seeds_dir
from family_pipeline.synth.names import NameBank, compound_names, feminine_surname, surname_from, zipf_weights


@pytest.fixture(scope="module")
def bank() -> NameBank:
    return NameBank.load(default_seeds_dir())


def test_names_are_drawn_more_often_the_more_common():
    w = zipf_weights(500)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(np.diff(w) < 0)
    assert 0.01 < w[0] < 0.05  # the most common name: a few per cent, not a tenth of the country


def test_compounds_alternate_their_elements_and_never_double_one():
    names = compound_names(["Нұр", "Ер", "Жан"], ["бек", "жан", "лан"])
    assert "Жанжан" not in names and len(names) == 8
    # diagonal by diagonal: no first element takes the common ranks alone
    assert names[:6] == ("Нұрбек", "Нұржан", "Ербек", "Нұрлан", "Ержан", "Жанбек")


def test_surnames_are_formed_from_given_names():
    assert surname_from("Нұрлан") == "Нұрланов"
    assert surname_from("Жұма") == "Жұмаев"
    assert surname_from("Сергей") == "Сергеев"
    assert feminine_surname(surname_from("Ерболат")) == "Ерболатова"


def test_the_common_names_come_first_and_the_tail_follows(bank):
    head = (default_seeds_dir() / "names" / "kazakh_male_first.txt").read_text(encoding="utf-8").split()
    assert list(bank.kz_male[:len(head)]) == head
    assert len(bank.kz_male) > 10 * len(head) and len(set(bank.kz_male)) == len(bank.kz_male)
    assert "Нұрланов" in bank.kz_surnames and len(bank.kz_surnames) > 10 * 60


def _expected_namesakes(bank: NameBank, men: int) -> float:
    """Other men sharing a Kazakh man's surname, given name and patronymic, in a community of
    ``men`` men (surname, name and father's name drawn independently: an upper bound's worth)."""
    same = 1.0
    for names in (bank.kz_surnames, bank.kz_male, bank.kz_male):
        w = zipf_weights(len(names))
        same *= float((w * w).sum())
    return same * men


def test_a_national_country_has_few_namesakes(bank):
    # 5M persons hold about 1.7M Kazakh men; with the 60 common names of each list drawn
    # uniformly every one of them had about eight namesakes, and a record naming someone by
    # full name alone could not tell them apart
    assert _expected_namesakes(bank, 1_700_000) < 0.25


def test_persons_draw_common_names_often_and_rare_ones_too(bank):
    rng = np.random.default_rng(1)
    n = 20_000
    sex = np.where(rng.random(n) < 0.5, "M", "F")
    kazakh = rng.random(n) < 0.7
    given = bank.assign(sex, kazakh, np.full(n, -1), np.arange(n), np.arange(n), np.full(n, -1),
                        np.full(n, "head", dtype=object), rng)
    men = given["first_name"][(sex == "M") & kazakh]
    counts = {name: int((men == name).sum()) for name in (bank.kz_male[0], bank.kz_male[-1])}
    assert counts[bank.kz_male[0]] > 100  # the most common name: about 2% of the men
    distinct = len(set(men))
    assert distinct > 500  # the tail is drawn, not only the common names
