"""Kazakh and Russian names in Cyrillic (from ``seeds/names``) assigned to persons.

A real country's names are a few common ones and a long tail of rare ones: each list holds the
common names first, and a person draws a name with a probability that falls with its rank
(``ZIPF_SHIFT``). The Kazakh lists go on with compound given names (``kazakh_name_parts.yaml``:
Нұр+бек, Ай+гүл) and with the surnames formed from every male name (Нұрбеков). With the common
names alone (60 Kazakh surnames drawn uniformly), two in three persons of a 1M country shared their
full name with someone, and a record naming a person by full name alone said less and less the
larger the country.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

#: a name of rank r (1 = most common) is drawn with probability proportional to 1 / (r + ZIPF_SHIFT):
#: the most common Kazakh male name goes to about 2% of the men, as a common name does
ZIPF_SHIFT = 10
_VOWELS = frozenset("аәеёиоөуұүыіэюя")


def _read(path: Path) -> tuple[str, ...]:
    items = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return tuple(dict.fromkeys(i for i in items if i))


def zipf_weights(n: int) -> np.ndarray:
    """Probability of each of ``n`` names by rank."""
    w = 1.0 / (np.arange(1, n + 1) + ZIPF_SHIFT)
    return w / w.sum()


def draw_by_rank(rng: np.random.Generator, names: int, size: int) -> np.ndarray:
    """Indices into a list of ``names`` names, each drawn with its rank's probability."""
    return rng.choice(names, size, p=zipf_weights(names))


def compound_names(first: list[str], second: list[str]) -> tuple[str, ...]:
    """Every first element joined with every second one, in an order that alternates the
    elements (diagonal by diagonal), so that no element alone makes the more common compounds;
    an element is not doubled (Жанжан)."""
    pairs = sorted(((i, j) for i in range(len(first)) for j in range(len(second))), key=lambda ij: (ij[0] + ij[1], ij[0]))
    return tuple(dict.fromkeys(first[i] + second[j] for i, j in pairs if first[i].lower() != second[j]))


def surname_from(name: str) -> str:
    """The surname formed from a forebear's given name: Нұрлан -> Нұрланов, Жұма -> Жұмаев."""
    last = name[-1].lower()
    if last in "йь":
        return name[:-1] + "ев"
    return name + ("ев" if last in _VOWELS else "ов")


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
        parts = yaml.safe_load((d / "kazakh_name_parts.yaml").read_text(encoding="utf-8"))
        kz_male = tuple(dict.fromkeys(_read(d / "kazakh_male_first.txt") + compound_names(**parts["male"])))
        kz_female = tuple(dict.fromkeys(_read(d / "kazakh_female_first.txt") + compound_names(**parts["female"])))
        return cls(
            kz_male=kz_male,
            kz_female=kz_female,
            kz_surnames=tuple(dict.fromkeys(_read(d / "kazakh_surnames.txt") + tuple(surname_from(m) for m in kz_male))),
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
            first_idx[m] = draw_by_rank(rng, len(arr), m.sum())
            first[m] = arr[first_idx[m]]

        # surnames (male form index per person, then gendered)
        kz_s = np.array(self.kz_surnames, dtype=object)
        ru_s = np.array(self.ru_surnames, dtype=object)
        kz_f = np.array([feminine_surname(s) for s in self.kz_surnames], dtype=object)
        ru_f = np.array([feminine_surname(s) for s in self.ru_surnames], dtype=object)
        own = np.where(kazakh, draw_by_rank(rng, len(kz_s), n), draw_by_rank(rng, len(ru_s), n))
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
            lists[(True, False)][draw_by_rank(rng, len(self.kz_male), no_f.sum())],
            lists[(False, False)][draw_by_rank(rng, len(self.ru_male), no_f.sum())],
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
