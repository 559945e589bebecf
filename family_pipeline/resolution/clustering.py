"""From scored pairs to persons without chaining strangers together.

Links at or above the threshold form connected components. A component is then checked against
its core — the record most mentions agree with: every member must itself be a plausible match
of the core. Where one is not (a bad link bridged two people), the component is rebuilt link by
link, strongest first, and two groups are merged only when every member of one is a plausible
match of every member of the other (complete linkage), so a record that names only "Ivanov
Ivan" can join one Ivan Ivanov but never glue two of them together.

The rebuild runs on every broken component at once: each holds a small matrix of which of its
members are compatible, and round k takes the k-th strongest link of every component together,
so the cost is a few array operations per round rather than Python work per link.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from family_pipeline.resolution.blocking import group_order, pairs_within, release_free_memory

__all__ = ["MATRIX_WIDTH", "cluster_links", "components"]

#: broken components up to this padded size are rebuilt together on compatibility matrices
MATRIX_WIDTH = 512


def _index_type(n: int) -> type:
    """int32 for indexes below 2^31, int64 beyond."""
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


#: edges hooked at a time in a round of ``components``
EDGE_SLICE = 1 << 22


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest node of each node's connected component in the graph of ``n`` nodes with
    edges (``a``, ``b``) (int32 below 2^31 nodes).

    In rounds: across each edge whose ends are still apart, the larger root is hooked under the
    smaller one (a root's parent only ever falls, so no cycle forms), then every node is pointed
    at its root (pointer jumping); the edges whose ends are still apart go to the next round.
    The edges are hooked and checked :data:`EDGE_SLICE` at a time, so besides the edges only a
    parent per node, a flag per edge and one slice's temporaries are held: scipy's
    ``connected_components`` made float64 CSR matrices of the links and of their transpose
    (1.2 GB above the linkage's arrays at 5M persons)."""
    small = _index_type(n)
    parent = np.arange(n, dtype=small)
    a, b = np.asarray(a), np.asarray(b)
    while len(a):
        for s in range(0, len(a), EDGE_SLICE):
            ra, rb = parent[a[s:s + EDGE_SLICE]], parent[b[s:s + EDGE_SLICE]]
            hi, lo = np.maximum(ra, rb), np.minimum(ra, rb)
            # only a root is hooked: one hooked earlier in this round waits for the next
            root = (hi != lo) & (parent[hi] == hi)
            np.minimum.at(parent, hi[root], lo[root])
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        apart = np.empty(len(a), bool)
        for s in range(0, len(a), EDGE_SLICE):
            np.not_equal(parent[a[s:s + EDGE_SLICE]], parent[b[s:s + EDGE_SLICE]], out=apart[s:s + EDGE_SLICE])
        a, b = a[apart], b[apart]
    return parent


def _numbered(first: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 from each node's group's smallest node, numbered in order of those nodes
    (of first member: the order ``dense_codes`` gives, with no hash table of every node)."""
    is_first = first == np.arange(len(first), dtype=first.dtype)
    rank = np.cumsum(is_first, dtype=_index_type(len(first)))  # int32 below 2^31 nodes
    rank -= 1
    return rank[first]


def _cores(labels: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Per component, the member with the most support (lowest index on ties). One sort key per
    record made in place, and the records' labels in that order once (at 5M persons the key's
    temporaries and the labels ordered twice were 0.5 GB)."""
    top = int(support.max()) if len(support) else 0
    key = labels.astype(np.int64)
    key *= top + 1
    key += top
    key -= support
    order = group_order(key)  # stable: lowest index first
    del key
    ordered = labels[order]
    first = np.empty(len(ordered), bool)
    if len(ordered):
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    core = np.empty(labels.max() + 1 if len(labels) else 0, _index_type(len(labels)))
    core[ordered[first]] = order[first]
    return core


def _runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of each run of equal values in a sorted array."""
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(sorted_keys) else np.empty(0, np.int64)
    return starts, np.diff(np.r_[starts, len(sorted_keys)])


def _rebuild(n: int, labels: np.ndarray, broken: np.ndarray, ki: np.ndarray, kj: np.ndarray, kp: np.ndarray,
             compatible: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, int]:
    """Greedy complete-linkage rebuild of the ``broken`` components; (group per node of those
    components or -1 elsewhere, links refused)."""
    is_broken = np.zeros(int(labels.max()) + 1, bool)
    is_broken[broken] = True
    in_broken = is_broken[labels]
    # members of the broken components, numbered 0..s-1 inside their component
    nodes = np.flatnonzero(in_broken)
    nodes = nodes[group_order(labels[nodes])]
    starts, sizes = _runs(labels[nodes])
    small = _index_type(n)  # a component and a place in it per record: int32 below 2^31 records
    comp_of = np.full(n, -1, small)
    local_of = np.full(n, -1, small)
    comp_of[nodes] = np.repeat(np.arange(len(starts)), sizes)
    local_of[nodes] = np.arange(len(nodes)) - np.repeat(starts, sizes)
    width = np.maximum(1 << np.ceil(np.log2(np.maximum(sizes, 2))).astype(np.int64), 2)  # padded size
    widest = int(width.max())
    # a component too wide for a matrix of its own (national runs chain thousands of records
    # through bad links) is rebuilt link by link, judging only the groups a link would join
    large = width > MATRIX_WIDTH
    in_small = in_broken.copy()
    if large.any():
        in_small[nodes[np.repeat(large, sizes)]] = False
    # which members may share a person: every pair inside each component, judged in one call
    pa, pb, _ = pairs_within(np.where(in_small, labels, -1), cap=int(sizes[~large].max(initial=2)))
    fits = compatible(pa, pb) if len(pa) else np.empty(0, bool)
    # links inside the broken components, strongest first; rank = position within the component
    e = np.flatnonzero(in_broken[ki])
    e = e[np.lexsort((kj[e], ki[e], -kp[e]))]
    ec, eu, ev = comp_of[ki[e]], local_of[ki[e]], local_of[kj[e]]
    by_comp = group_order(ec)
    ec, eu, ev = ec[by_comp], eu[by_comp], ev[by_comp]
    e_starts, e_sizes = _runs(ec)
    rank = np.arange(len(ec)) - np.repeat(e_starts, e_sizes)

    group = np.full(n, -1, np.int64)
    refused = 0
    for c in np.flatnonzero(large):
        members = nodes[starts[c]: starts[c] + sizes[c]]
        links = np.flatnonzero(ec == c)  # this component's links, strongest first
        local, refused_here = _rebuild_one(members, eu[links], ev[links], compatible)
        group[members] = c * widest + local
        refused += refused_here
    pair_comp = comp_of[pa]
    for w in np.unique(width[~large]):
        comps = np.flatnonzero(width == w)
        slot = np.full(len(starts), -1, np.int64)
        slot[comps] = np.arange(len(comps))
        # compatibility matrix per component (padding is never consulted)
        allowed = np.ones((len(comps), w, w), bool)
        mine = np.flatnonzero(slot[pair_comp] >= 0)
        s, la, lb = slot[pair_comp[mine]], local_of[pa[mine]], local_of[pb[mine]]
        allowed[s, la, lb] = fits[mine]
        allowed[s, lb, la] = fits[mine]
        grp = np.tile(np.arange(w), (len(comps), 1))
        sel = np.flatnonzero(slot[ec] >= 0)
        sel = sel[group_order(rank[sel] * (len(comps) + 1) + slot[ec[sel]])]
        r_starts, r_sizes = _runs(rank[sel])
        for start, size in zip(r_starts.tolist(), r_sizes.tolist()):
            k = sel[start:start + size]
            c, u, v = slot[ec[k]], eu[k], ev[k]
            gu, gv = grp[c, u], grp[c, v]
            live = gu != gv
            c, gu, gv = c[live], gu[live], gv[live]
            if not len(c):
                continue
            g = grp[c]
            in_u, in_v = g == gu[:, None], g == gv[:, None]
            clash = (~allowed[c] & in_u[:, :, None] & in_v[:, None, :]).any(axis=(1, 2))
            refused += int(clash.sum())
            ok = ~clash
            c, gv, gu, g, in_v = c[ok], gv[ok], gu[ok], g[ok], in_v[ok]
            grp[c] = np.where(in_v, gu[:, None], g)
        members = nodes[np.isin(comp_of[nodes], comps)]
        group[members] = comp_of[members].astype(np.int64) * widest + grp[slot[comp_of[members]], local_of[members]]
    return group, refused


def _rebuild_one(members: np.ndarray, eu: np.ndarray, ev: np.ndarray,
                 compatible: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, int]:
    """The greedy complete-linkage rebuild of one component, link by link (strongest first):
    two groups merge when every member of one is compatible with every member of the other; the
    same rule as the batched rebuild, for a component too wide for its matrix. (group per member,
    numbered by member position; links refused)."""
    grp = np.arange(len(members))
    of_group = {g: [g] for g in range(len(members))}
    refused = 0
    for u, v in zip(eu.tolist(), ev.tolist()):
        gu, gv = grp[u], grp[v]
        if gu == gv:
            continue
        a = np.repeat(np.asarray(of_group[gu]), len(of_group[gv]))
        b = np.tile(np.asarray(of_group[gv]), len(of_group[gu]))
        lo, hi = np.minimum(members[a], members[b]), np.maximum(members[a], members[b])
        if not compatible(lo, hi).all():
            refused += 1
            continue
        grp[of_group[gv]] = gu
        of_group[gu].extend(of_group.pop(gv))
    return grp, refused


def cluster_links(n: int, ki: np.ndarray, kj: np.ndarray, kp: np.ndarray, support: np.ndarray,
                  compatible: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, dict]:
    """Cluster label per record (0..k-1 in order of first member) and statistics, from the links
    alone: the pairs (``ki``, ``kj``) at or above the threshold that contradict nothing, with
    their probabilities ``kp`` (the other candidate pairs and the levels need not be in memory).

    ``compatible(a, b)`` says, per record pair, that nothing in them contradicts one person (no
    conflicting birth date, first name or checked national id); a member must be compatible with
    its core and, when a component is rebuilt, with every member of a group it joins.
    """
    first = components(n, ki, kj)  # each record's component's smallest record
    labels = _numbered(first)
    # each part's temporaries handed back before the next part peaks (inside the linkage freed
    # arrays are kept for reuse, and these come in other sizes: at 5M persons the clustering
    # held 1 GB of them by its end)
    release_free_memory()
    core = _cores(labels, support)
    members = np.flatnonzero(core[labels] != np.arange(n, dtype=core.dtype))
    fit = compatible(members, core[labels[members]]) if len(members) else np.empty(0, bool)
    broken = np.unique(labels[members[~fit]])
    del core, members, fit
    release_free_memory()
    stats = {"components": int(labels.max() + 1) if n else 0, "components_rebuilt": int(len(broken)),
             "links_refused": 0}
    if len(broken):
        group, refused = _rebuild(n, labels, broken, ki, kj, kp, compatible)
        stats["links_refused"] = refused
        # a rebuilt group's records take its smallest record as theirs (a component is rebuilt
        # whole, so a group never shares a smallest record with an untouched component)
        rebuilt = np.flatnonzero(group >= 0)
        in_group = group_order(group[rebuilt])
        rebuilt = rebuilt[in_group]  # by group, each group's records in order (a stable sort)
        starts, sizes = _runs(group[rebuilt])
        first[rebuilt] = np.repeat(rebuilt[starts], sizes)
        labels = _numbered(first)
    return labels, stats  # numbered in order of first member
