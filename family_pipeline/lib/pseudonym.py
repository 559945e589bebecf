"""Pseudonymous keys: a keyed hash (HMAC-SHA256) of an identifier, so marts, metadata and alerts
can count and join people without holding their IIN. The secret comes from the environment
(``FAMILY_PIPELINE_PSEUDONYM_KEY``); without it a fixed development key is used, which is fine
for synthetic data and nothing else."""

from __future__ import annotations

import hashlib
import hmac
import os

import numpy as np

__all__ = ["DEV_KEY", "pseudonym_ints", "pseudonyms", "secret"]

DEV_KEY = "family-pipeline-development-key"


def secret() -> bytes:
    return (os.environ.get("FAMILY_PIPELINE_PSEUDONYM_KEY") or DEV_KEY).encode("utf-8")


def pseudonyms(values, length: int = 16) -> np.ndarray:
    """Hex pseudonyms (``length`` characters) of string values; None stays None."""
    key = secret()
    out = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        out[k] = None if v is None else hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).hexdigest()[:length]
    return out


def pseudonym_ints(values) -> np.ndarray:
    """Positive int64 pseudonyms of string values (63 bits of the keyed hash). The HMAC's keyed
    inner and outer hash states are made once and copied per value (RFC 2104, the same digest as
    ``hmac.new``), which halves the cost for a national table of persons."""
    key = secret()
    if len(key) > 64:  # SHA-256 block size
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def one(v) -> int:
        h = inner.copy()
        h.update(str(v).encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        return int.from_bytes(o.digest()[:8], "big") >> 1

    return np.fromiter((one(v) for v in values), dtype=np.int64, count=len(values))
