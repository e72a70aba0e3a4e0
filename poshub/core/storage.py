"""A content-addressed file store under the data directory.

Bytes are stored once under their SHA-256 (``ab/cdef…``), written to a temporary file,
flushed to disk and renamed into place, so a reader never sees a partial file. A file
whose database row was rolled back stays as an unreferenced blob; it holds nothing
that is not also in an uploaded document and can be swept by a later job.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

SHA256_HEX_LENGTH = 64


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != SHA256_HEX_LENGTH or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        data = self.path_for(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise OSError(f"stored blob {sha256[:12]}… does not match its hash")
        return data

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()
