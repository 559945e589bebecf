"""From scored pairs to persons without chaining strangers together.

Links at or above the threshold form connected components. A component is then checked against
its core — the record most mentions agree with: every member must itself be a plausible match
of the core. Where one is not (a bad link bridged two people), the component is rebuilt link by
link, strongest first, and two groups are merged only when every member of one is a plausible
match of every member of the other (complete linkage), so a record that names only "Ivanov
Ivan" can join one Ivan Ivanov but never glue two of them together.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["cluster"]


def _cores(labels: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Per component, the member with the most support (lowest index on ties)."""
    order = np.lexsort((np.arange(len(labels)), -support, labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]]
    core = np.empty(labels.max() + 1 if len(labels) else 0, np.int64)
    core[labels[order][first]] = order[first]
    return core


def cluster(n: int, i: np.ndarray, j: np.ndarray, p: np.ndarray, threshold: float, support: np.ndarray,
            compatible: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, dict]:
    """Cluster label per record (0..k-1 in order of first member) and statistics.

    ``compatible(a, b)`` says, per record pair, that nothing in them contradicts one person (no
    conflicting birth date, first name or checked national id); a member must be compatible with
    its core and, when a component is rebuilt, with every member of a group it joins.
    """
    keep = p >= threshold
    ki, kj, kp = i[keep], j[keep], p[keep]
    graph = coo_matrix((np.ones(len(ki)), (ki, kj)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    core = _cores(labels, support)
    members = np.flatnonzero(core[labels] != np.arange(n))
    fit = compatible(members, core[labels[members]]) if len(members) else np.empty(0, bool)
    broken = np.unique(labels[members[~fit]])
    stats = {"components": int(labels.max() + 1) if n else 0, "components_rebuilt": int(len(broken)),
             "links_refused": 0}
    if len(broken):
        labels = labels.copy()
        in_broken = np.isin(labels[ki], broken)
        edges = np.flatnonzero(in_broken)
        edges = edges[np.lexsort((kj[edges], ki[edges], -kp[edges]))]
        nodes = np.flatnonzero(np.isin(labels, broken))
        # every pair inside the rebuilt components, scored in one call
        from family_pipeline.resolution.blocking import pairs_within

        groups = np.where(np.isin(labels, broken), labels, -1)
        pa_, pb_, _ = pairs_within(groups, cap=max(int(np.bincount(labels).max()), 2))
        fits = dict(zip(zip(pa_.tolist(), pb_.tolist()), compatible(pa_, pb_).tolist())) if len(pa_) else {}
        parent = {int(x): int(x) for x in nodes}
        members = {int(x): [int(x)] for x in nodes}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for e in edges:
            a, b = find(int(ki[e])), find(int(kj[e]))
            if a == b:
                continue
            # every member of one group must be a plausible match of every member of the other
            if not all(fits[(min(x, y), max(x, y))] for x in members[a] for y in members[b]):
                stats["links_refused"] += 1
                continue
            if len(members[a]) < len(members[b]):
                a, b = b, a
            parent[b] = a
            members[a].extend(members.pop(b))
        next_label = labels.max() + 1
        roots = {}
        for x in nodes:
            r = find(int(x))
            if r not in roots:
                roots[r] = next_label
                next_label += 1
            labels[x] = roots[r]
    # renumber in order of first member
    _, first_idx, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first_idx), np.int64)
    rank[np.argsort(first_idx, kind="stable")] = np.arange(len(first_idx))
    return rank[inverse], stats
