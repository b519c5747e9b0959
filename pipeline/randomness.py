"""Stable seeds: the same inputs give the same random choices on any runner and worker count.

Seeds come from SHA-256 of the parts (the global seed, a purpose, a document id, a pass),
never from Python's `hash()` (salted per process) or from the order elements arrive in.
"""

from __future__ import annotations

import hashlib
import random


def stable_seed(*parts: object) -> int:
    """A 64-bit integer determined by the `str()` of each part."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def stable_rng(*parts: object) -> random.Random:
    """A `random.Random` seeded by `stable_seed(*parts)`."""
    return random.Random(stable_seed(*parts))
