"""Kazakh and Russian names in Cyrillic (from ``seeds/names``) assigned to persons."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def _read(path: Path) -> tuple[str, ...]:
    items = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return tuple(dict.fromkeys(i for i in items if i))


def feminine_surname(male: str) -> str:
    return male + "а" if male.endswith(("ов", "ев", "ёв", "ин", "ын")) else male


def patronymic(father_first: str, female: bool, modern_kazakh: bool) -> str:
    if modern_kazakh:
        return father_first + ("қызы" if female else "ұлы")
    if father_first == "Илья":
        return "Ильинична" if female else "Ильич"
    if father_first.endswith("й"):
        stem, suffix = father_first[:-1], ("евна" if female else "евич")
    elif father_first.endswith(("а", "я")):
        stem, suffix = father_first[:-1], ("ична" if female else "ич")
    else:
        stem, suffix = father_first, ("овна" if female else "ович")
    return stem + suffix


@dataclass(frozen=True)
class NameBank:
    kz_male: tuple[str, ...]
    kz_female: tuple[str, ...]
    kz_surnames: tuple[str, ...]
    ru_male: tuple[str, ...]
    ru_female: tuple[str, ...]
    ru_surnames: tuple[str, ...]
    villages: tuple[str, ...]
    streets: tuple[str, ...]

    @classmethod
    def load(cls, seeds: Path) -> NameBank:
        d = seeds / "names"
        return cls(
            kz_male=_read(d / "kazakh_male_first.txt"),
            kz_female=_read(d / "kazakh_female_first.txt"),
            kz_surnames=_read(d / "kazakh_surnames.txt"),
            ru_male=_read(d / "russian_male_first.txt"),
            ru_female=_read(d / "russian_female_first.txt"),
            ru_surnames=_read(d / "russian_surnames.txt"),
            villages=_read(d / "village_names.txt"),
            streets=_read(d / "street_names.txt"),
        )

    def assign(self, sex, kazakh, father, family, head_idx, spouse_idx, role, rng) -> dict[str, np.ndarray]:
        """First names, surnames and patronymics for every person (object arrays).

        ``father``: person index of each person's father, or -1 (a random father's name is
        then used). Wives take the husband's surname four times in five; children take the
        family's surname.
        """
        n = len(sex)
        female = sex == "F"
        # first names: an index into the list of the person's ethnicity and sex
        lists = {
            (True, False): np.array(self.kz_male, dtype=object),
            (True, True): np.array(self.kz_female, dtype=object),
            (False, False): np.array(self.ru_male, dtype=object),
            (False, True): np.array(self.ru_female, dtype=object),
        }
        first = np.empty(n, dtype=object)
        first_idx = np.zeros(n, dtype=np.int64)
        for (kz, fem), arr in lists.items():
            m = (kazakh == kz) & (female == fem)
            first_idx[m] = rng.integers(0, len(arr), m.sum())
            first[m] = arr[first_idx[m]]

        # surnames (male form index per person, then gendered)
        kz_s = np.array(self.kz_surnames, dtype=object)
        ru_s = np.array(self.ru_surnames, dtype=object)
        kz_f = np.array([feminine_surname(s) for s in self.kz_surnames], dtype=object)
        ru_f = np.array([feminine_surname(s) for s in self.ru_surnames], dtype=object)
        own = np.where(kazakh, rng.integers(0, len(kz_s), n), rng.integers(0, len(ru_s), n))
        fam_surname = np.full(family.max() + 2 if n else 1, -1, dtype=np.int64)
        in_fam = family >= 0
        fam_surname[family[in_fam]] = 0  # placeholder; set from the head below
        fam_surname[family[head_idx]] = own[head_idx]
        sidx = own.copy()
        child = role == "child"
        sidx[child] = fam_surname[family[child]]
        wives = spouse_idx[spouse_idx >= 0]
        takes = rng.random(len(wives)) < 0.8
        sidx[wives[takes]] = fam_surname[family[wives[takes]]]
        # a wife from the other community keeps her kind of surname list only if she kept hers
        surname_kz = kazakh.copy()
        surname_kz[wives[takes]] = kazakh[head_idx[family[wives[takes]]]]
        surname_kz[child] = kazakh[head_idx[family[child]]]
        last = np.where(surname_kz, np.where(female, kz_f[np.minimum(sidx, len(kz_f) - 1)], kz_s[np.minimum(sidx, len(kz_s) - 1)]),
                        np.where(female, ru_f[sidx % len(ru_f)], ru_s[sidx % len(ru_s)]))

        # patronymics from the father's first name (his own list), else a random male name
        father_first = np.empty(n, dtype=object)
        has_f = father >= 0
        father_first[has_f] = first[father[has_f]]
        no_f = ~has_f
        father_first[no_f] = np.where(
            kazakh[no_f],
            lists[(True, False)][rng.integers(0, len(self.kz_male), no_f.sum())],
            lists[(False, False)][rng.integers(0, len(self.ru_male), no_f.sum())],
        )
        modern = kazakh & (rng.random(n) < 0.25)
        none = kazakh & (role != "child") & (rng.random(n) < 0.03)
        # compute each distinct (name, female, modern) once
        codes, distinct = pd.factorize(father_first)
        key = codes.astype(np.int64) * 4 + female.astype(np.int64) * 2 + modern.astype(np.int64)
        uniq, inv = np.unique(key, return_inverse=True)
        forms = np.array(
            [patronymic(distinct[k // 4], bool(k & 2), bool(k & 1)) for k in uniq.tolist()],
            dtype=object,
        )
        patr = forms[inv]
        patr[none] = None
        return {"first_name": first, "last_name": last, "patronymic": patr}
