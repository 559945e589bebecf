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
    """Positive int64 pseudonyms of string values (63 bits of the keyed hash)."""
    key = secret()
    return np.fromiter(
        (int.from_bytes(hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).digest()[:8], "big") >> 1 for v in values),
        dtype=np.int64, count=len(values))
