"""A country generated in shards: deterministic whatever the scheduling, identifiers unique
across shards, every registry's parts listed in its manifest."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.lib.identifiers import valid_iin_mask
from family_pipeline.synth import generate_country
from family_pipeline.synth.shards import plan_shards
from family_pipeline_tests.synth import file_digests

PERSONS = 3_000
SHARD = 1_000


@pytest.fixture(scope="module")
def country(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded")
    generate_country(out, persons=PERSONS, seed=11, progress=False, shard_size=SHARD, workers=2)
    return out


def truth(root: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(root / "truth" / f"{name}.parquet")


def test_plan_is_fixed_by_persons_seed_and_shard_size():
    shards = plan_shards(PERSONS, 11, SHARD)
    assert [s.persons for s in shards] == [1000, 1000, 1000]
    assert [s.person_base for s in shards][:2] == [0, 1035]  # living + 3.5% deceased
    assert plan_shards(PERSONS, 11, SHARD) == shards
    assert len(plan_shards(PERSONS, 11, PERSONS)) == 1


def test_same_country_whatever_the_number_of_workers(country, tmp_path):
    generate_country(tmp_path, persons=PERSONS, seed=11, progress=False, shard_size=SHARD, workers=1)
    assert file_digests(country) == file_digests(tmp_path)
    assert not (country / ".synth-shards").exists()


def test_identifiers_are_unique_across_shards(country):
    persons = truth(country, "persons")
    families = truth(country, "families")
    assert (persons.person_id.to_numpy() == np.arange(len(persons))).all()
    assert (families.family_id.to_numpy() == np.arange(len(families))).all()
    assert PERSONS - 3 <= persons.alive.sum() <= PERSONS  # a shard's last family may not trim to fit
    assert persons.iin.is_unique and valid_iin_mask(persons.iin.to_numpy()).all()
    living = persons[persons.alive]
    assert (families.members == living.groupby("family_id").size().reindex(families.family_id).to_numpy()).all()
    head_family = persons.set_index("person_id").family_id.reindex(families.head_id).to_numpy()
    assert (head_family == families.family_id.to_numpy()).all()
    for table, column in [("marriages", "marriage_id"), ("births", "birth_id"), ("deaths", "death_id"),
                          ("real_estate", "property_id"), ("real_estate", "cadastral_no"),
                          ("land_plots", "cadastral_no"), ("vehicles", "vehicle_id"), ("vehicles", "plate"),
                          ("vehicles", "vin"), ("businesses", "name"), ("animals", "animal_id"),
                          ("animals", "tag"), ("loans", "loan_id"), ("payments", "payment_id"),
                          ("housing_queue", "entry_id")]:
        assert truth(country, table)[column].is_unique, (table, column)
    births = truth(country, "births")
    assert births.child_id.isin(persons.person_id).all()
    assert births.mother_id[births.mother_id >= 0].isin(persons.person_id).all()
    # a mother is in her child's family, so shards never reference each other's persons
    by_id = persons.set_index("person_id").family_id
    known = births[births.mother_id >= 0]
    same = by_id.reindex(known.mother_id).to_numpy() == by_id.reindex(known.child_id).to_numpy()
    assert same.mean() > 0.9


def test_every_dwelling_has_an_address_of_its_own_across_shards(country):
    persons = truth(country, "persons")
    living = persons[persons.alive]
    dwellings = living.drop_duplicates("address_id")
    # one text per dwelling, one dwelling per text in a region (lodgers share their host's
    # dwelling; two regions may each have a village of one name)
    assert living.groupby("address_id").address.nunique().max() == 1
    assert not dwellings.duplicated(["region", "address"]).any()
    town = np.where(dwellings.settlement_type == "city", "г. ", "с. ") + dwellings.settlement_name
    assert all(a.startswith(t + ", ул. ") for a, t in zip(dwellings.address, town))


def test_truth_of_records_is_unique_and_points_at_the_country(country):
    persons = truth(country, "persons")
    mentions = truth(country, "mentions")
    assert mentions.person_id[mentions.person_id >= 0].isin(persons.person_id).all()
    assert not mentions.duplicated(["registry", "record_id", "group"]).any()
    records = truth(country, "animal_records")
    assert records.animal_id.isin(truth(country, "animals").animal_id).all()
    # the IINs written in a later shard's part are the truth's IINs of the persons it mentions
    spec = catalog().registry("gbd_fl")
    rid = spec.column(spec.record_id).source
    iin = next(c.source for c in spec.columns if c.role == "subject.iin")
    part = pd.read_csv(country / "landing/gbd_fl" / "gbd_fl.part0002.csv", dtype=str, sep=spec.source.delimiter,
                       encoding=spec.source.encoding, on_bad_lines="skip")
    subject = mentions[(mentions.registry == "gbd_fl") & (mentions.group == "subject")].set_index("record_id")
    pid = subject.person_id.reindex(part[rid]).to_numpy()
    assert (pid >= persons.person_id[persons.family_id >= 0].max() // 2).all()  # persons of the last shard
    written = part[iin].to_numpy()
    true = persons.set_index("person_id").iin.reindex(pid).to_numpy()
    assert (written == true).mean() > 0.95


def test_every_registry_lists_its_parts(country):
    for spec in catalog().registries:
        manifest = json.loads((country / "landing" / spec.code / "manifest.json").read_text())
        if spec.source.location == "database":
            assert "parts" not in manifest
            continue
        files = [p["file"] for p in manifest["parts"]]
        assert files[0] == spec.file_name and len(files) == 3, spec.code
        assert all((country / "landing" / spec.code / f).exists() for f in files), spec.code
        assert manifest["rows"] == sum(p["rows"] for p in manifest["parts"]), spec.code
    defects = truth(country, "defects")
    assert defects.kind.nunique() >= 12
