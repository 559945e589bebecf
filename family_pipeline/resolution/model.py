"""Fellegi-Sunter match weights: u from random pairs, m by expectation-maximisation.

For each field and agreement level the model holds m = P(level | same person) and
u = P(level | different persons). A pair's match weight is the sum over fields of
log2(m/u) (missing fields add nothing) plus the prior log-odds; its match probability follows.
u comes from random record pairs (nearly all non-matches) with exact agreement computed from the
value frequencies; m and the prior are estimated by EM over the candidate pairs, which are
grouped into distinct comparison patterns first, so EM costs the number of patterns, not pairs.
Exact agreement on a name is weighed by how common that name is (term frequency): sharing
"Ivanov" says less than sharing a rare surname. The fitted parameters are a small JSON document
that can be saved, read and reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FellegiSunter", "pattern_codes"]

_FLOOR = 1e-6


def pattern_codes(levels: dict[str, np.ndarray], fields: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct patterns as a fields x k matrix of levels, inverse index, counts)."""
    small = 6 ** len(fields) <= 1 << 24
    dtype = np.int32 if small else np.int64  # national pair counts: half the memory per pair
    code = np.zeros(len(levels[fields[0]]), dtype)
    for f in fields:
        code *= 6
        code += levels[f].astype(dtype) + 1
    if small:  # a count per possible pattern: no sort at all
        per_code = np.bincount(code, minlength=6 ** len(fields))
        uniq = np.flatnonzero(per_code)
        index = np.full(len(per_code), -1, np.int32)
        index[uniq] = np.arange(len(uniq))
        inverse, counts = index[code], per_code[uniq]
    else:
        uniq, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    pats = np.zeros((len(fields), len(uniq)), np.int64)
    rest = uniq.copy()
    for k in range(len(fields) - 1, -1, -1):
        pats[k] = rest % 6 - 1
        rest //= 6
    return pats, inverse, counts


@dataclass
class FellegiSunter:
    levels: dict[str, int]
    m: dict[str, list[float]] = field(default_factory=dict)
    u: dict[str, list[float]] = field(default_factory=dict)
    prior: float = 0.1
    #: fields whose exact level is weighed by term frequency
    tf_fields: tuple[str, ...] = ()
    iterations: int = 0

    # ------------------------------------------------------------------ estimation
    def estimate_u(self, random_levels: dict[str, np.ndarray], exact_u: dict[str, float]) -> None:
        for f, top in self.levels.items():
            lv = random_levels[f]
            present = lv >= 0
            counts = np.bincount(lv[present], minlength=top + 1).astype(float) + 0.5
            u = counts / counts.sum()
            u = np.maximum(u, _FLOOR)
            if f in exact_u:
                # counted over the whole space of pairs, not sampled: not floored, or the weight of
                # a rare agreement (a national id) would stop growing with the country while the
                # prior keeps falling, and such agreements would stop linking at national size
                u[:top] *= (1 - exact_u[f]) / u[:top].sum()
                u[top] = exact_u[f]
            self.u[f] = u.tolist()

    def initial_m(self) -> None:
        for f, top in self.levels.items():
            m = np.full(top + 1, 0.05 / max(top, 1))
            m[top] = 0.9
            m[0] = 0.05
            self.m[f] = (m / m.sum()).tolist()

    def estimate_m_from_anchors(self, levels: dict[str, np.ndarray], anchors: dict[str, np.ndarray]) -> None:
        """m of each field from pairs that a rule on *other* fields marks as near-certain matches
        (``anchors[field]``: boolean mask over the pairs); fields without anchors keep theirs."""
        for f, top in self.levels.items():
            mask = anchors.get(f)
            if mask is None:
                continue
            lv = levels[f][mask]
            lv = lv[lv >= 0]
            if len(lv) < 20:
                continue
            counts = np.bincount(lv, minlength=top + 1).astype(float) + 0.5
            self.m[f] = np.maximum(counts / counts.sum(), _FLOOR).tolist()

    def estimate_prior(self, levels: dict[str, np.ndarray], max_iterations: int = 100, tol: float = 1e-7) -> None:
        """EM for the share of matches among the candidates, m and u fixed."""
        self.estimate_m(levels, max_iterations, tol, update_m=False)

    def estimate_m(self, levels: dict[str, np.ndarray], max_iterations: int = 50, tol: float = 1e-6,
                   update_m: bool = True) -> None:
        """EM over the candidate pairs with u fixed."""
        fields = tuple(self.levels)
        cached = levels.get("_patterns")
        pats, _, counts = cached if cached is not None else pattern_codes(levels, fields)
        counts = counts.astype(float)
        prior = self.prior
        for it in range(max_iterations):
            lm = np.zeros(pats.shape[1])
            lu = np.zeros(pats.shape[1])
            for k, f in enumerate(fields):
                lv = pats[k]
                present = lv >= 0
                m, u = np.asarray(self.m[f]), np.asarray(self.u[f])
                lm[present] += np.log(m[lv[present]])
                lu[present] += np.log(u[lv[present]])
            a = np.log(prior) + lm
            b = np.log1p(-prior) + lu
            p = 1 / (1 + np.exp(np.clip(b - a, -700, 700)))
            w = counts * p
            new_prior = float(w.sum() / counts.sum())
            change = abs(new_prior - prior)
            for k, f in enumerate(fields if update_m else ()):
                lv = pats[k]
                present = lv >= 0
                num = np.bincount(lv[present], weights=w[present], minlength=self.levels[f] + 1) + 1e-3
                m_new = num / num.sum()
                change = max(change, float(np.abs(m_new - np.asarray(self.m[f])).max()))
                self.m[f] = np.maximum(m_new, _FLOOR).tolist()
            prior = min(max(new_prior, 1e-6), 1 - 1e-6)
            self.iterations = it + 1
            if change < tol:
                break
        self.prior = prior

    # ------------------------------------------------------------------ prediction
    def match_weight(self, levels: dict[str, np.ndarray], tf: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """log2 Bayes factor summed over fields (without the prior)."""
        n = len(next(iter(levels.values())))
        total = np.zeros(n)
        for f, top in self.levels.items():
            lv = levels[f]
            present = lv >= 0
            w = np.log2(np.asarray(self.m[f]) / np.asarray(self.u[f]))
            total[present] += w[lv[present]]
            if tf and f in tf:
                # exact agreement on a value: u is how often that value occurs, not the average
                exact = lv == top
                freq = np.maximum(tf[f][exact], self.u[f][top] / 50)
                total[exact] += np.log2(self.u[f][top] / freq)
        return total

    def probability(self, levels: dict[str, np.ndarray], tf: dict[str, np.ndarray] | None = None) -> np.ndarray:
        logit = np.log2(self.prior / (1 - self.prior)) + self.match_weight(levels, tf)
        return 1 / (1 + np.exp2(-np.clip(logit, -1000, 1000)))

    def to_dict(self) -> dict:
        return {"levels": self.levels, "prior": self.prior, "iterations": self.iterations,
                "m": {f: [round(x, 8) for x in v] for f, v in self.m.items()},
                "u": {f: [round(x, 10) for x in v] for f, v in self.u.items()},
                "weights": {f: [round(float(np.log2(a / b)), 3) for a, b in zip(self.m[f], self.u[f])] for f in self.levels},
                "tf_fields": list(self.tf_fields)}

    @classmethod
    def from_dict(cls, data: dict) -> FellegiSunter:
        return cls(levels=dict(data["levels"]), m=dict(data["m"]), u=dict(data["u"]), prior=float(data["prior"]),
                   tf_fields=tuple(data.get("tf_fields", ())), iterations=int(data.get("iterations", 0)))
