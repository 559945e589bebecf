"""The synthetic country: determinism, structure and the truth it keeps."""


import pandas as pd
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.lib.identifiers import valid_iin_mask
from family_pipeline.synth import generate_country
from family_pipeline_tests.synth import file_digests

PERSONS = 4_000


@pytest.fixture(scope="module")
def country(tmp_path_factory):
    out = tmp_path_factory.mktemp("country")
    generate_country(out, persons=PERSONS, seed=7, progress=False)
    return out


def test_same_seed_gives_byte_identical_files(country, tmp_path):
    generate_country(tmp_path, persons=PERSONS, seed=7, progress=False)
    assert file_digests(country) == file_digests(tmp_path)


def test_another_seed_gives_another_country(country, tmp_path):
    generate_country(tmp_path, persons=PERSONS, seed=8, progress=False,
                     registries=["gbd_fl"])
    a = (country / "landing/gbd_fl/gbd_fl.csv").read_bytes()
    b = (tmp_path / "landing/gbd_fl/gbd_fl.csv").read_bytes()
    assert a != b


def test_every_registry_is_written_with_a_manifest(country):
    for spec in catalog().registries:
        manifest = country / "landing" / spec.code / "manifest.json"
        assert manifest.exists(), spec.code
        if spec.source.location == "landing":
            assert (country / "landing" / spec.code / spec.file_name).exists(), spec.code


def test_population_structure(country):
    persons = pd.read_parquet(country / "truth/persons.parquet")
    families = pd.read_parquet(country / "truth/families.parquet")
    living = persons[persons.alive]
    assert len(living) == PERSONS
    assert 3.0 <= PERSONS / len(families) <= 3.4  # 20M persons ~ 6.2M families
    assert valid_iin_mask(persons.iin.to_numpy()).all()
    assert persons.iin.is_unique
    assert set(persons.region) <= {r.iso for r in catalog().regions}
    assert set(living.settlement_type) == {"city", "village"}
    # every living person is in exactly one family, and every family has one head
    assert (living.family_id >= 0).all()
    assert (families.members == living.groupby("family_id").size().reindex(families.family_id).to_numpy()).all()
    # Kazakh letters and both communities are present
    assert persons.last_name.str.contains("[әғқңөұүһі]", regex=True).any()
    assert set(persons.ethnicity) == {"kazakh", "russian"}


def test_truth_of_mentions_covers_every_person_reference(country):
    mentions = pd.read_parquet(country / "truth/mentions.parquet")
    for spec in catalog().registries:
        if spec.person_groups:
            got = set(mentions.loc[mentions.registry == spec.code, "group"])
            manifest = pd.read_json(country / "landing" / spec.code / "manifest.json", typ="series")
            if manifest["rows"]:
                assert got == set(spec.person_groups), spec.code


def test_defects_are_injected_and_recorded(country):
    defects = pd.read_parquet(country / "truth/defects.parquet")
    kinds = set(defects.kind)
    for kind in ["name_typo", "name_translit", "name_swap", "iin_missing", "iin_bad_check",
                 "iin_wrong_valid", "iin_relative", "duplicate_record", "dead_person_appears",
                 "wrong_region", "malformed_row", "virtual_animal", "phantom_animal"]:
        assert kind in kinds, kind
    # a mistyped-but-valid IIN still passes the check digit, a bad-check one does not
    mentions = pd.read_parquet(country / "truth/mentions.parquet")
    persons = pd.read_parquet(country / "truth/persons.parquet").set_index("person_id")
    spec = catalog().registry("gbd_fl")
    # injected malformed lines are the ingestion's business, not this check's
    gbd = pd.read_csv(country / "landing/gbd_fl" / spec.file_name, sep=spec.source.delimiter,
                      encoding=spec.source.encoding, dtype=str, on_bad_lines="skip")
    wrong = defects[(defects.registry == "gbd_fl") & (defects.kind == "iin_wrong_valid")]
    rows = gbd[gbd.ID_ZAP.isin(wrong.record_id)]
    if len(rows):
        assert valid_iin_mask(rows.IIN.to_numpy()).all()
        truth = mentions[(mentions.registry == "gbd_fl")].set_index("record_id").person_id
        true_iins = persons.iin.reindex(truth.reindex(rows.ID_ZAP)).to_numpy()
        assert (true_iins != rows.IIN.to_numpy()).all()


def test_clean_country_has_no_defects(tmp_path):
    generate_country(tmp_path, persons=1_500, seed=3, defect_scale=0, progress=False)
    defects = pd.read_parquet(tmp_path / "truth/defects.parquet")
    assert len(defects) == 0
