"""Deterministic random streams: one independent generator per (seed, purpose, ...) key.

Each part of the world draws from its own stream, so adding a node or a source does not
shift every other random draw: the same seed gives the same world and truth.
"""
from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *keys: int | str) -> np.random.Generator:
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key) & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(words))
