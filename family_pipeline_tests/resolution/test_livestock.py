"""Livestock: tags linked through typos, virtual and phantom animals — on records made by hand
with exact expected results, and against the truth of a generated country."""

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.evaluation.livestock import livestock_section
from family_pipeline.ingestion import ingest_registry
from family_pipeline.lib.identifiers import make_iins, valid_iin_mask
from family_pipeline.lib.lake import Lake
from family_pipeline.lib.pseudonym import pseudonyms
from family_pipeline.resolution import livestock
from family_pipeline.resolution.livestock import (
    ANIMAL_RECORD_SCHEMA,
    ANOMALY_INPUT,
    animal_records,
    link_animals,
    livestock_anomalies,
    livestock_summary,
    normalize_settlement,
    normalize_tag,
    person_name_key,
)
from family_pipeline.resolution.normalize import name_key

T = "KZ000100000123"
# five people: born on different days, IINs issued by the project's own generator
P_ALIVE, P_DEAD, P_DEAD_ZAGS, P_UNKNOWN, P_OTHER = make_iins(
    np.array(["1970-01-05", "1950-03-07", "1948-11-23", "1981-06-30", "1990-02-14"], dtype="datetime64[D]"),
    np.array(["M", "F", "M", "M", "F"]), np.array([11, 22, 33, 44, 55]))


def records(*rows: dict) -> pa.Table:
    """Animal records with defaults for whatever a row leaves out (tag_norm from the tag)."""
    defaults = {"registry": "isj_livestock", "species": "sheep", "settlement": "Актогай", "region": "KZ-61",
                "owner_iin": P_ALIVE, "owner_iin_valid": True, "owner_name_key": "aibek|nurlanov", "owner_named": True}
    full = [{**defaults, "record_id": f"R{k}", **row} for k, row in enumerate(rows)]
    given = pa.schema([f for f in ANIMAL_RECORD_SCHEMA if f.name not in ("tag_norm", "settlement_norm")])
    table = pa.Table.from_pylist(full, schema=given)
    table = table.add_column(3, "tag_norm", normalize_tag(table.column("tag").combine_chunks()))
    table = table.add_column(8, "settlement_norm", normalize_settlement(table.column("settlement").combine_chunks()))
    return table.select(ANIMAL_RECORD_SCHEMA.names).cast(ANIMAL_RECORD_SCHEMA)


def keys(linked: pa.Table) -> list[str]:
    return linked.column("animal_key").to_pylist()


# ------------------------------------------------------------------------------ normalising
def test_tags_normalise_case_spaces_and_a_dropped_prefix():
    got = normalize_tag(pa.array(["KZ000100095219", "kz000100095219", "KZ 0001 0009-5219", "000100095219", " ", None]))
    assert got.to_pylist() == ["KZ000100095219"] * 4 + [None, None]


def test_settlements_normalise_kazakh_letters_and_case():
    got = normalize_settlement(pa.array(["Ақтоғай", "Актогай ", "АКТОГАЙ", "Приозёрное", None]))
    assert got.to_pylist() == ["актогай"] * 3 + ["приозерное", None]


# ------------------------------------------------------------------------------ linking
def test_typos_attach_to_the_tag_one_edit_away_with_the_same_owner():
    linked = link_animals(records(
        {"tag": T, "registry": "isj_livestock"},
        {"tag": "kz 000100000123", "registry": "vet_vaccinations"},        # exact after normalising
        {"tag": "KZ000100000132", "registry": "household_livestock"},      # adjacent transposition
        {"tag": "KZ00010000123", "registry": "livestock_subsidies", "settlement": None},  # deletion
        {"tag": "KZ000100000923", "registry": "vet_vaccinations", "owner_iin": None,
         "owner_iin_valid": None, "owner_name_key": None, "owner_named": None},  # no owner: no link
        {"tag": "KZ000100000124", "registry": "vet_vaccinations", "owner_iin": P_OTHER,
         "owner_name_key": None, "owner_named": None},                     # another owner's animal
    ))
    assert keys(linked) == [T, T, T, T, "KZ000100000923", "KZ000100000124"]


def test_owner_name_or_birth_date_agree_when_the_iin_is_missing_but_not_against_another_iin():
    born = dt.date(2020, 4, 1)
    linked = link_animals(records(
        {"tag": T, "birth_date": born},
        {"tag": T, "registry": "vet_vaccinations"},
        {"tag": "KZ000100000128", "registry": "household_livestock", "owner_iin": None, "owner_iin_valid": None},
        {"tag": "KZ000100000723", "registry": "livestock_subsidies", "settlement": None, "owner_iin": None,
         "owner_iin_valid": None, "owner_name_key": None, "birth_date": born},
        # the same name but a clearly different owner IIN: a namesake's animal
        {"tag": "KZ000100000129", "registry": "household_livestock", "owner_iin": P_OTHER},
    ))
    assert keys(linked) == [T, T, T, T, "KZ000100000129"]


def test_a_typo_never_chains_through_another_typo():
    # B is one edit from T and from C; C is two edits from T: C must not reach T through B
    linked = link_animals(records(
        {"tag": T, "registry": "isj_livestock"},
        {"tag": T, "registry": "vet_vaccinations"},
        {"tag": T, "registry": "household_livestock"},
        {"tag": "KZ000100000124", "registry": "livestock_subsidies", "settlement": None},
        {"tag": "KZ000100000134", "registry": "household_livestock", "settlement": "Каратал"},
    ))
    assert keys(linked) == [T, T, T, T, "KZ000100000134"]


def test_neighbouring_tags_of_one_owner_stay_two_animals():
    linked = link_animals(records(
        # two animals of several records each
        {"tag": T}, {"tag": T, "registry": "vet_vaccinations"},
        {"tag": "KZ000100000124"}, {"tag": "KZ000100000124", "registry": "vet_vaccinations"},
        # a lone record of a registry the neighbour already lists at the same place: the next animal
        {"tag": "KZ000100000125", "registry": "vet_vaccinations", "settlement": "Ақтоғай"},
        # the same, registered at another settlement: a mistyped copy of the animal (kept)
        {"tag": "KZ000100000623", "settlement": "Каратал"},
    ))
    assert keys(linked) == [T, T, "KZ000100000124", "KZ000100000124", "KZ000100000125", T]


def test_a_copy_of_a_listing_under_a_mistyped_tag_joins_its_animal():
    born = dt.date(2021, 2, 24)
    linked = link_animals(records(
        {"tag": T, "birth_date": born}, {"tag": T, "registry": "vet_vaccinations"},
        # the same registry lists it again at the same place, one digit of the tag wrong: the
        # owner IIN and birth date are the first listing's, so it is that listing again
        {"tag": "KZ000100000723", "birth_date": born},
        # born another day: the owner's next animal, which stays apart
        {"tag": "KZ000100000128", "birth_date": dt.date(2022, 3, 1)},
    ))
    assert keys(linked) == [T, T, T, "KZ000100000128"]


def test_a_typo_that_spells_another_animals_tag_leaves_for_its_own():
    other = "KZ000100000456"
    linked = link_animals(records(
        {"tag": other, "owner_iin": P_OTHER, "owner_name_key": "aigul|sadykova"},
        {"tag": other, "registry": "household_livestock", "owner_iin": P_OTHER, "owner_name_key": "aigul|sadykova"},
        # P_ALIVE's animal KZ000100000356, mistyped as the other animal's tag in the veterinary register
        {"tag": other, "registry": "vet_vaccinations", "owner_name_key": None, "owner_named": None},
        {"tag": "KZ000100000356"},
        {"tag": "KZ000100000356", "registry": "household_livestock"},
    ))
    got = keys(linked)
    assert got[:2] == [other, other]
    assert got[2] == got[3] == got[4] != other


# ------------------------------------------------------------------------------ anomalies
@pytest.fixture
def register(tmp_path) -> Lake:
    """A lake with a population register (one death) and a civil registry (another death)."""
    lake = Lake(tmp_path)
    lake.write("registries", "gbd_fl", pa.table({
        "record_id": ["FL1", "FL2", "FL3", "FL4"],
        "iin": [P_ALIVE, P_DEAD, P_DEAD_ZAGS, P_OTHER],
        "iin_valid": [True, True, True, True],
        "last_name": ["Нұрланов", "Омарова", "Серіков", "Садыкова"],
        "first_name": ["Айбек", "Гүлнар", "Ерлан", "Айгүл"],
        "birth_date": pa.array([dt.date(1970, 1, 5), dt.date(1950, 3, 7), dt.date(1948, 11, 23), dt.date(1990, 2, 14)]),
        "death_date": pa.array([None, dt.date(2024, 5, 1), None, None], pa.date32()),
    }))
    lake.write("registries", "zags_deaths", pa.table({
        "record_id": ["D1"], "iin": [P_DEAD_ZAGS], "iin_valid": [True], "last_name": ["Серіков"],
        "first_name": ["Ерлан"], "birth_date": pa.array([dt.date(1948, 11, 23)]),
        "death_date": pa.array([dt.date(2025, 1, 2)]),
    }))
    return lake


def _iin_one_digit_off(iin: str) -> str:
    """Another valid IIN, one serial digit away (as iin_wrong_valid makes them)."""
    for d in "0123456789":
        other = iin[:10] + d + iin[11]
        if other != iin and valid_iin_mask(np.array([other]))[0]:
            return other
    raise AssertionError("no valid neighbour")


def test_phantoms_are_animals_without_a_living_known_owner(register):
    nobody = {"owner_iin": None, "owner_iin_valid": None, "owner_name_key": None, "owner_named": False}
    mistyped = P_ALIVE[:11] + str((int(P_ALIVE[11]) + 1) % 10)  # the check digit no longer matches

    def tag(k: int) -> str:  # tags far apart, so no two of them link
        return "KZ" + str(k) * 12

    linked = link_animals(records(
        {"tag": tag(1)},                                                       # living owner
        {"tag": tag(2), "owner_iin": P_DEAD},                                  # dead per gbd_fl
        {"tag": tag(3), "owner_iin": P_DEAD_ZAGS},                             # dead per zags_deaths
        {"tag": tag(4), "owner_iin": P_UNKNOWN},                               # nobody the register knows
        {"tag": tag(5), **nobody},                                             # no owner at all
        {"tag": tag(6), **nobody, "owner_iin": mistyped, "owner_iin_valid": False},
        {"tag": tag(7), "owner_iin": None, "owner_iin_valid": None},           # named owner, IIN left out
        # the owner's IIN one digit off: found by the birth date it encodes and the name
        {"tag": tag(8), "owner_iin": _iin_one_digit_off(P_ALIVE)},
        {"tag": tag(9), "owner_iin": P_DEAD, "registry": "vet_vaccinations"},
        {"tag": tag(9), "registry": "household_livestock"},                    # one record names a living owner
        # a vaccination record names nobody by name: that alone is no phantom
        {"tag": tag(0), "registry": "vet_vaccinations", "owner_iin": None, "owner_iin_valid": None,
         "owner_name_key": None, "owner_named": None},
    ))
    anomalies = livestock_anomalies(linked, register).to_pandas()
    phantom = anomalies[anomalies.kind == "phantom"].set_index("animal_key").reason.to_dict()
    assert phantom == {tag(2): "owner_dead", tag(3): "owner_dead", tag(4): "owner_unknown",
                       tag(5): "owner_missing", tag(6): "owner_invalid"}
    assert anomalies.loc[anomalies.animal_key == tag(2), "owner_key"].item() == pseudonyms([P_DEAD], 16)[0]


def test_a_namesake_born_the_same_day_a_broken_register_iin_or_a_mistyped_death_make_no_phantom(tmp_path):
    # born on one day: two Kirill Morozovs (one dead) with IINs of their own, and three people
    # whose register rows carry a broken IIN (a relative's, one digit off) and a misspelt name
    born = np.array(["1936-09-30"] * 6 + ["1960-01-01"], dtype="datetime64[D]")
    alive, dead, relative_of, off_by_one, far, far_held, relative = make_iins(
        born, np.array(["M"] * 7), np.array([7, 14, 21, 28, 35, 500, 42]))
    lake = Lake(tmp_path)
    lake.write("registries", "gbd_fl", pa.table({
        "record_id": [f"FL{k}" for k in range(6)],
        "iin": [alive, dead, relative, _iin_one_digit_off(off_by_one), far_held, relative],
        "iin_valid": [True] * 6,
        "last_name": ["Морозов", "Морозов", "Әлиев", "Копылов", "Волков", "Әлиев"],
        "first_name": ["Кирилл", "Кирилл", "Ақлпн", "Констнтин", "Вячслав", "Ақлан"],
        "birth_date": pa.array([dt.date(1936, 9, 30)] * 5 + [dt.date(1960, 1, 1)]),
        "death_date": pa.array([None, dt.date(2020, 1, 1), None, None, None, None], pa.date32()),
    }))
    # a death registered under a mistyped IIN that is the living Kirill's (another man, born the
    # same day): the IIN is held under another name, so it is not Kirill's death
    lake.write("registries", "zags_deaths", pa.table({
        "record_id": ["D1"], "iin": [alive], "iin_valid": [True], "last_name": ["Петров"],
        "first_name": ["Иван"], "birth_date": pa.array([dt.date(1936, 9, 30)]),
        "death_date": pa.array([dt.date(2025, 1, 2)]),
    }))

    def key(last: str, first: str) -> str:
        return person_name_key(pa.array([last]), pa.array([first]))[0].as_py()

    def tag(k: int) -> str:
        return "KZ" + str(k) * 12

    linked = link_animals(records(
        {"tag": tag(1), "owner_iin": alive, "owner_name_key": key("Морозов", "Кирилл")},
        {"tag": tag(2), "owner_iin": dead, "owner_name_key": key("Морозов", "Кирилл")},
        {"tag": tag(3), "owner_iin": relative_of, "owner_name_key": key("Әлиев", "Ақлан")},
        {"tag": tag(4), "owner_iin": off_by_one, "owner_name_key": key("Копылов", "Константин")},
        # several digits off (and one letter) is a namesake with an IIN of his own: no one the register knows
        {"tag": tag(5), "owner_iin": far, "owner_name_key": key("Волков", "Вячеслав")},
    ))
    anomalies = livestock_anomalies(linked, lake).to_pandas()
    phantom = anomalies[anomalies.kind == "phantom"].set_index("animal_key").reason.to_dict()
    assert phantom == {tag(2): "owner_dead", tag(5): "owner_unknown"}


def test_virtual_animals_are_registered_in_two_settlements_and_owners_stay_pseudonymous(register, monkeypatch):
    linked = link_animals(records(
        {"tag": T, "settlement": "Ақтоғай"},
        {"tag": T, "registry": "vet_vaccinations", "settlement": "АКТОГАЙ"},   # the same place spelled otherwise
        {"tag": T, "registry": "livestock_subsidies", "settlement": None},
        {"tag": "KZ000100000777", "settlement": "Актогай"},
        {"tag": "KZ000100000777", "registry": "household_livestock", "settlement": "Каратал"},
        {"tag": "KZ000100000777", "registry": "vet_vaccinations", "settlement": "Қаратал", "owner_iin": P_DEAD},
    ))
    anomalies = livestock_anomalies(linked, register)
    rows = anomalies.to_pylist()
    assert [(r["animal_key"], r["kind"]) for r in rows] == [("KZ000100000777", "virtual")]
    row = rows[0]
    assert row["settlements"] == ["Актогай", "Каратал"]  # one spelling per place
    assert row["n_settlements"] == 2 and row["records"] == 3 and row["region"] == "KZ-61"
    assert row["registries"] == ["household_livestock", "isj_livestock", "vet_vaccinations"]
    assert row["owner_key"] == pseudonyms([P_ALIVE], 16)[0]
    blob = str(rows)
    assert P_ALIVE not in blob and P_DEAD not in blob and "nurlanov" not in blob
    monkeypatch.setenv("FAMILY_PIPELINE_PSEUDONYM_KEY", "another secret")
    assert livestock_anomalies(linked, register).column("owner_key")[0].as_py() != row["owner_key"]

    summary = livestock_summary(anomalies).to_pylist()
    assert summary == [{"region": "KZ-61", "settlement": "Актогай", "kind": "virtual", "animals": 1},
                       {"region": "KZ-61", "settlement": "Каратал", "kind": "virtual", "animals": 1}]


# ------------------------------------------------------------------------------ a generated country
ANIMAL_SOURCES = ("gbd_fl", "zags_deaths")


@pytest.fixture(scope="module")
def livestock_lake(small_country, tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("livestock")
    for part in ("landing", "truth"):
        (root / part).symlink_to(small_country / part, target_is_directory=True)
    lake, cat = Lake(root), catalog()
    for spec in cat.registries:
        if spec.has_animals or spec.code in ANIMAL_SOURCES:
            ingest_registry(spec, lake, cat)
    linked = link_animals(animal_records(lake, cat))
    lake.write("resolution", "animal_records", linked)
    lake.write("resolution", "livestock_anomalies", livestock_anomalies(linked, lake))
    return lake


def test_generated_tags_carry_typos_recorded_as_truth(small_country):
    defects = pd.read_parquet(small_country / "truth/defects.parquet")
    typos = defects[defects.kind == "tag_typo"]
    assert set(typos.registry) <= {s.code for s in catalog().registries if s.has_animals}
    assert set(typos.detail) == {"substitution", "deletion", "transposition", "prefix_dropped",
                                 "prefix_lower", "prefix_spaced"}


def test_livestock_on_a_generated_country_reaches_the_accuracy_goal(livestock_lake):
    report = livestock_section(livestock_lake)
    linkage = report["linkage"]["pairwise"]
    assert linkage["precision"] >= 0.99 and linkage["recall"] >= 0.99
    for kind in ("virtual", "phantom"):
        assert report[kind]["true"] > 0, kind
        assert report[kind]["precision"] >= 0.99 and report[kind]["recall"] >= 0.99, (kind, report[kind])


def test_owners_are_asked_about_once_per_distinct_iin_validity_and_name():
    from family_pipeline.resolution.livestock import _distinct_rows

    iin = pa.array(["1", "1", None, "", "1", None, "1"])
    valid = pa.array([True, True, False, False, False, False, True])
    name = pa.array(["a", "a", "a", "a", "a", None, None])
    row, first = _distinct_rows(iin, valid, name)
    # numbered by first appearance; a null differs from an empty string and from every value
    assert row.tolist() == [0, 0, 1, 2, 3, 4, 5]
    assert first.tolist() == [0, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("keys, values", [
    (["a", "b", None, "c", "a"], ["c", "a", "x", None, "y", "z", "a"]),  # the values the larger side
    (["a", "b", None, "c", "a", "q", "r", "s"], ["c", "a", None]),  # the keys the larger side
])
def test_a_key_is_found_among_the_values_whichever_side_is_larger(keys, values):
    from family_pipeline.resolution.livestock import _in

    found = _in(pa.array(keys, pa.string()), pa.array(values, pa.string()))
    assert found.tolist() == [k is not None and k in values for k in keys]


def test_name_keys_are_made_once_per_distinct_name_and_reach_every_row(monkeypatch):
    last = pa.chunked_array([["Әбенова", None, "Абенова"], ["Нурланов", "Әбенова", ""]])
    first = pa.chunked_array([["Айгерім", "Aibek", "Айгерим"], [None, "Айгерім", "x"]])
    asked = []
    codes = livestock.name_codes
    monkeypatch.setattr(livestock, "name_codes", lambda values: asked.append(sorted(values)) or codes(values))
    got = person_name_key(last, first).to_pylist()

    def expected(a, b):
        ka, kb = (name_key(v) if v is not None else None for v in (a, b))
        return None if ka is None or kb is None else "|".join(sorted([ka, kb]))

    assert got == [expected(a, b) for a, b in zip(last.to_pylist(), first.to_pylist())]
    assert got[0] == got[4] and got[0] is not None
    assert asked == [sorted(["Әбенова", "Абенова", "Нурланов", ""]), sorted(["Айгерім", "Aibek", "Айгерим", "x"])]


def test_the_anomalies_read_only_their_input_columns(livestock_lake):
    narrow = livestock_lake.read("resolution", "animal_records", columns=ANOMALY_INPUT)
    assert livestock_anomalies(narrow, livestock_lake).equals(livestock_lake.read("resolution", "livestock_anomalies"))
