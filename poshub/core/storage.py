"""A content-addressed, encrypted file store under the data directory.

Bytes are addressed by their SHA-256 (``ab/cdef…``) and stored once. What is on disk is
never the clear bytes: each file holds ``PHS1 | nonce | AES-256-GCM(bytes)`` under the
document key (derived from the KEK with a label of its own, see
:class:`poshub.core.crypto.KeyVault`), with the address bound as associated data, so a
file copied or renamed to another address fails to open. Every read checks the tag and
then the SHA-256 of the clear bytes.

Files are written to a temporary file (mode 0600, directories 0700), flushed to disk and
renamed into place, so a reader never sees a partial file. A file whose database row was
rolled back stays as an unreferenced blob; it holds nothing that is not also in an
uploaded document and can be swept by a later job.

Files written before encryption (clear bytes under their hash) are still read, after the
hash is checked, and sealed in place when read; :meth:`ContentStore.seal_legacy_files`
seals all of them once at process start and leaves a marker so later starts skip the walk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SHA256_HEX_LENGTH = 64
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
_MAGIC = b"PHS1"
_NONCE_LENGTH_BYTES = 12
_AAD_PREFIX = b"poshub/content-store/v1\x00"
SEALED_MARKER = ".sealed-v1"
"""Left in the store's root once every clear file written before encryption is sealed."""

log = logging.getLogger(__name__)


PROCESS_UMASK = 0o077
"""Files and directories a PosHub process creates are its own: 0600 and 0700."""


def restrict_umask() -> None:
    """Set the process umask so every data file (database, its -wal and -shm, anchors,
    key files, exports) is created readable by the service account only."""
    os.umask(PROCESS_UMASK)


class StoredFileCorrupt(OSError):
    """A stored file fails its authentication tag or its hash (tampered with or damaged)."""


def ensure_private_directory(path: Path) -> None:
    """Create ``path`` and its missing parents as 0700 (whatever the umask); a directory
    that exists already is tightened to 0700 too."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
        os.chmod(directory, DIRECTORY_MODE)
    if not missing:
        os.chmod(path, DIRECTORY_MODE)


class ContentStore:
    def __init__(self, root: Path, key: bytes) -> None:
        self.root = root
        self._cipher = AESGCM(key)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != SHA256_HEX_LENGTH or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if target.exists() and self._is_sealed(target):
            return digest
        self._write(target, self._seal(digest, data))
        return digest

    def get(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        stored = path.read_bytes()
        sealed = stored.startswith(_MAGIC)
        data = self._open(sha256, stored) if sealed else stored
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoredFileCorrupt(f"stored blob {sha256[:12]}… does not match its hash")
        if not sealed:  # written before encryption at rest: sealed now it is verified
            self._write(path, self._seal(sha256, data))
        return data

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def seal_legacy_files(self) -> int:
        """Encrypt every clear file left from before encryption; once, then a marker."""
        if (self.root / SEALED_MARKER).exists():
            return 0
        ensure_private_directory(self.root)  # a new store starts sealed
        sealed = 0
        for path in sorted(self.root.glob("[0-9a-f][0-9a-f]/*")):
            digest = path.parent.name + path.name
            if path.name.startswith(".") or len(digest) != SHA256_HEX_LENGTH:
                continue
            if not self._is_sealed(path):
                self.get(digest)  # verifies the hash, then seals in place
                sealed += 1
        marker = self.root / SEALED_MARKER
        marker.touch(mode=FILE_MODE)
        os.chmod(marker, FILE_MODE)
        if sealed:
            log.warning("encrypted %d stored file(s) written before encryption at rest", sealed)
        return sealed

    def _is_sealed(self, path: Path) -> bool:
        with path.open("rb") as handle:
            return handle.read(len(_MAGIC)) == _MAGIC

    def _seal(self, sha256: str, data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_LENGTH_BYTES)
        return _MAGIC + nonce + self._cipher.encrypt(nonce, data, _AAD_PREFIX + sha256.encode())

    def _open(self, sha256: str, stored: bytes) -> bytes:
        start = len(_MAGIC)
        nonce = stored[start : start + _NONCE_LENGTH_BYTES]
        try:
            return self._cipher.decrypt(
                nonce, stored[start + _NONCE_LENGTH_BYTES :], _AAD_PREFIX + sha256.encode()
            )
        except InvalidTag:
            raise StoredFileCorrupt(
                f"stored blob {sha256[:12]}… fails its authentication tag"
            ) from None

    def _write(self, target: Path, sealed: bytes) -> None:
        ensure_private_directory(target.parent)
        # mkstemp creates the file 0600 whatever the umask.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(sealed)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
