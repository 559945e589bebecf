"""Named, independent random streams derived from one seed.

Each part of the generator draws from its own stream, so adding draws in one part never shifts
the numbers another part sees, and the same seed always gives the same country.
"""

from __future__ import annotations

import zlib

import numpy as np


class Streams:
    def __init__(self, seed: int):
        self.seed = int(seed)

    def get(self, name: str) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, zlib.crc32(name.encode("utf-8"))]))
