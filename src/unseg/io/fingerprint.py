"""A content fingerprint of a file, cheap for files of many gigabytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes read from each of :data:`SAMPLES` places spread over a large file.
BLOCK = 1 << 16
SAMPLES = 64


def file_fingerprint(path: str | Path) -> str:
    """BLAKE2b of a file's size and content: all of it up to ``BLOCK * SAMPLES`` bytes (4 MiB),
    else ``SAMPLES`` blocks spread evenly from its first to its last byte.

    Telling two scans apart needs no full read: a different slide differs in every block, so
    a replaced file of the same size and time stamp is noticed. An edit that touches none of the
    sampled blocks is not.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        if size <= BLOCK * SAMPLES:
            digest.update(f.read())
        else:
            for i in range(SAMPLES):
                f.seek((size - BLOCK) * i // (SAMPLES - 1))
                digest.update(f.read(BLOCK))
    return digest.hexdigest()
