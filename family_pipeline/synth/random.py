"""Named, independent random streams derived from one seed (and a shard of the country).

Each part of the generator draws from its own stream, so adding draws in one part never shifts
the numbers another part sees, and the same seed always gives the same country. A country too
big for one piece is generated in shards (``shards.py``); shard ``k > 0`` draws from streams
seeded by ``(seed, name, k)``, and shard 0 from the very streams an unsharded country uses.
"""

from __future__ import annotations

import zlib

import numpy as np


class Streams:
    def __init__(self, seed: int, shard: int = 0):
        self.seed = int(seed)
        self.shard = int(shard)

    def get(self, name: str) -> np.random.Generator:
        key = [self.seed, zlib.crc32(name.encode("utf-8"))]
        if self.shard:
            key.append(self.shard)
        return np.random.default_rng(np.random.SeedSequence(key))
