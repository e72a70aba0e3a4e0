"""Anchors of the audit chain, kept outside the database.

The keyed chain (``poshub.core.audit``) stops a person who can write to the database from
recomputing it after rewriting rows, but not from deleting the newest rows together with
the chain-head row, nor from rewriting legacy (version 1) rows. So at intervals the worker
(and ``poshub audit anchor``) appends the chain head to a file outside the database::

    <POSHUB_AUDIT_ANCHOR_DIR>/audit-anchors.jsonl   (default <data_dir>/audit-anchors)

one JSON object a line: ``seq`` (the last row), ``head`` (that row's MAC), ``at`` (UTC),
``prev`` (the previous anchor's ``mac``, so lines cannot be dropped from the middle) and
``mac``: HMAC-SHA256 over the other fields under ``KeyVault.audit_anchor_key`` (HKDF from
the KEK, its own label). An anchor is written only after the rows since the previous
anchor verify, so a rewritten chain is never anchored. The file is opened append-only,
mode 0600, and locked while written.

``verify`` walks the whole chain and reports, besides what ``audit.verify`` finds, a
missing anchor file, an anchor that does not verify, a row that differs from its anchor
(rows rewritten and the chain recomputed) and anchored rows that are gone (truncated).
Put the directory on storage the database's administrators cannot write (another host,
a WORM bucket synchronised from it, or at least another account's volume).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from poshub.core import audit
from poshub.core.audit import GENESIS_HASH, KEYED_VERSION, AuditEntry, VerifyProblem
from poshub.core.errors import N_

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows; writers then do not lock
    fcntl = None  # type: ignore[assignment]

ANCHOR_FILE_NAME = "audit-anchors.jsonl"
_FIRST_PREV = "0" * 64
_FIELDS = ("seq", "head", "at", "prev")


@dataclass(frozen=True)
class Anchor:
    seq: int
    head: str
    at: str
    prev: str
    mac: str


@dataclass(frozen=True)
class AnchorWritten:
    """The outcome of :func:`write`: the anchor appended (None when the head had not
    moved since the last one) or the problem that stopped it."""

    anchor: Anchor | None
    problem: VerifyProblem | None


def anchor_file(directory: Path) -> Path:
    return directory / ANCHOR_FILE_NAME


def _mac(key: bytes, fields: dict[str, Any]) -> str:
    message = json.dumps(
        {name: fields[name] for name in _FIELDS}, sort_keys=True, separators=(",", ":")
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _parse(lines: list[str], key: bytes) -> tuple[list[Anchor], VerifyProblem | None]:
    anchors: list[Anchor] = []
    prev = _FIRST_PREV
    for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            anchor = Anchor(
                int(data["seq"]), str(data["head"]), str(data["at"]), str(data["prev"]), data["mac"]
            )
        except (ValueError, KeyError, TypeError):
            return anchors, VerifyProblem(0, N_("an anchor is unreadable (edited)"))
        fields = {"seq": anchor.seq, "head": anchor.head, "at": anchor.at, "prev": anchor.prev}
        if not isinstance(anchor.mac, str) or not hmac.compare_digest(
            _mac(key, fields), anchor.mac
        ):
            return anchors, VerifyProblem(
                anchor.seq, N_("an anchor does not verify (forged, edited or another key)")
            )
        if anchor.prev != prev or (anchors and anchor.seq < anchors[-1].seq):
            return anchors, VerifyProblem(
                anchor.seq, N_("anchors are missing or out of order in the anchor file")
            )
        anchors.append(anchor)
        prev = anchor.mac
    return anchors, None


def read(directory: Path, key: bytes) -> tuple[list[Anchor], VerifyProblem | None]:
    """The anchors in order, each verified; a missing file is a problem."""
    path = anchor_file(directory)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], VerifyProblem(
            0, N_("the anchor file is missing (run `poshub audit anchor`, check the directory)")
        )
    return _parse(text.splitlines(), key)


def verify(
    session: Session, audit_key: bytes | None, anchor_key: bytes, directory: Path
) -> tuple[int, VerifyProblem | None]:
    """The whole chain against its MACs, its head row and every anchor."""
    anchors, problem = read(directory, anchor_key)
    checkpoints = {a.seq: a.head for a in anchors if a.seq > 0}
    walked = audit.walk(session, audit_key, checkpoints=checkpoints)
    if walked.problem is not None:
        return walked.checked, walked.problem
    if anchors and anchors[-1].seq > walked.last_seq:
        return walked.checked, VerifyProblem(
            walked.last_seq + 1, N_("rows covered by an anchor are missing (chain truncated)")
        )
    if problem is not None:
        return walked.checked, problem
    return walked.checked, audit.head_problem(session, walked)


@contextmanager
def _locked_file(directory: Path) -> Iterator[int]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(anchor_file(directory), os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _read_fd(fd: int) -> list[str]:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8").splitlines()


def _since(session: Session, audit_key: bytes | None, last: Anchor | None) -> audit.Walked:
    """Verify the rows after the last anchor (all rows when there is none)."""
    if last is None or last.seq == 0:
        return audit.walk(session, audit_key)
    row = session.get(AuditEntry, last.seq)
    if row is None:
        return audit.Walked(
            0,
            VerifyProblem(last.seq, N_("rows covered by an anchor are missing (chain truncated)")),
            last.seq,
            last.head,
            False,
        )
    if not hmac.compare_digest(row.hash, last.head):
        return audit.Walked(
            0,
            VerifyProblem(last.seq, N_("row differs from its anchor (chain rewritten)")),
            last.seq,
            last.head,
            False,
        )
    return audit.walk(
        session,
        audit_key,
        after_seq=last.seq,
        after_hash=last.head,
        keyed=row.version == KEYED_VERSION,
    )


def write(
    session: Session,
    audit_key: bytes | None,
    anchor_key: bytes,
    directory: Path,
    *,
    now: dt.datetime,
) -> AnchorWritten:
    """Append the current chain head as an anchor, after verifying the rows since the
    previous anchor; nothing is written when the head has not moved or a check fails."""
    with _locked_file(directory) as fd:
        anchors, problem = _parse(_read_fd(fd), anchor_key)
        if problem is not None:
            return AnchorWritten(None, problem)
        last = anchors[-1] if anchors else None
        walked = _since(session, audit_key, last)
        problem = walked.problem or audit.head_problem(session, walked)
        if problem is not None:
            return AnchorWritten(None, problem)
        if last is not None and last.seq == walked.last_seq:
            return AnchorWritten(None, None)
        fields: dict[str, Any] = {
            "seq": walked.last_seq,
            "head": walked.last_hash if walked.last_seq else GENESIS_HASH,
            "at": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "prev": last.mac if last else _FIRST_PREV,
        }
        fields["mac"] = _mac(anchor_key, fields)
        line = json.dumps(fields, sort_keys=True, separators=(",", ":")) + "\n"
        os.write(fd, line.encode())
        os.fsync(fd)
        return AnchorWritten(Anchor(**fields), None)
