"""The append-only, keyed and hash-chained audit log.

Every row stores the MAC of its predecessor and of its own canonical content, and a
gap-free sequence number. A single chain-head row, locked for the duration of the
writing transaction, serialises appends, so the chain has exactly one order. Database
triggers refuse UPDATE and DELETE on the log; ``poshub audit verify`` detects what a
person with enough privilege to drop those triggers still changed.

Row versions (the ``version`` column):

* **2, keyed** (every row written by a process that holds the KEK): the row's ``hash`` is
  HMAC-SHA256 under ``KeyVault.audit_key`` (HKDF from the KEK, label
  ``poshub/audit-chain/v1``) over the canonical content, which includes ``"v": 2``. The
  key is never in the database, so a person who can write to the database but does not
  hold the KEK cannot recompute the chain after rewriting rows.
* **1, legacy** (rows written before migration 0010, and by a process without the key,
  which only tests and tools do): plain SHA-256 as before. The migration cannot re-chain
  them (it has no KEK), so they stay a verified *prefix*: a version-1 row after the first
  version-2 row is reported as a rewrite. A wholesale downgrade of earlier rows to
  version 1 is caught by the anchors, which ``poshub.core.anchors`` keeps outside the
  database.

Details never hold secrets: callers pass field names and masked values only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    SmallInteger,
    String,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from poshub.core import limits
from poshub.core.db import AUDIT_KEY_INFO, Base, table_of, utcnow
from poshub.core.errors import N_

GENESIS_HASH = "0" * 64
CHAIN_HEAD_ID = 1
LEGACY_VERSION = 1
"""Rows chained with plain SHA-256 (before migration 0010, or written without the key)."""
KEYED_VERSION = 2
"""Rows chained with HMAC-SHA256 under the audit key derived from the KEK."""


class ActorKind(StrEnum):
    STAFF = "staff"
    APPLICANT = "applicant"
    MERCHANT = "merchant"
    SYSTEM = "system"


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    """Gap-free position in the chain, starting at 1."""
    at: Mapped[dt.datetime]
    """When the audited action was committed (UTC)."""
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    """Staff username, application id for applicants, or a job name for the system."""
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    """The row the action concerns; no foreign key, because the log outlives the rows it names."""
    details: Mapped[dict[str, Any]]
    """What changed, with no secrets: field names, states, reason codes, masked values."""
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(
        SmallInteger, default=LEGACY_VERSION, server_default=str(LEGACY_VERSION)
    )
    """How ``hash`` was computed: 1 SHA-256 (legacy), 2 HMAC-SHA256 under the audit key."""


class AuditChainHead(Base):
    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


def canonical_content(
    seq: int,
    at: dt.datetime,
    actor_kind: str,
    actor_id: str,
    action: str,
    entity_type: str,
    entity_id: str,
    details: dict[str, Any],
    prev_hash: str,
    version: int = LEGACY_VERSION,
) -> bytes:
    """The exact bytes a row's hash covers; stable across databases. Keyed rows add
    ``"v"`` so the version is covered by the MAC; legacy rows keep their old bytes."""
    document: dict[str, Any] = {
        "seq": seq,
        "at": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "details": details,
        "prev_hash": prev_hash,
    }
    if version != LEGACY_VERSION:
        document["v"] = version
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(content: bytes, version: int, key: bytes | None) -> str:
    """A row's ``hash``: SHA-256 for version 1, HMAC-SHA256 under ``key`` for version 2."""
    if version == LEGACY_VERSION:
        return hashlib.sha256(content).hexdigest()
    if key is None:
        raise ValueError("a keyed audit row needs the audit key")
    return hmac.new(key, content, hashlib.sha256).hexdigest()


def entry_hash(entry: AuditEntry, key: bytes | None = None) -> str:
    content = canonical_content(
        entry.seq,
        entry.at,
        entry.actor_kind,
        entry.actor_id,
        entry.action,
        entry.entity_type,
        entry.entity_id,
        entry.details,
        entry.prev_hash,
        entry.version,
    )
    return digest(content, entry.version, key)


def session_key(session: Session) -> bytes | None:
    """The audit key the session's database was given (``Database.audit_key``)."""
    key = session.info.get(AUDIT_KEY_INFO)
    return key if isinstance(key, bytes) else None


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(ActorKind.SYSTEM, job)


@dataclass(frozen=True)
class Recorded:
    seq: int
    hash: str


@dataclass(frozen=True)
class Action:
    """One action to append to the chain (see :func:`record_many`)."""

    actor: Actor
    action: str
    entity_type: str
    entity_id: str
    details: dict[str, Any] = field(default_factory=dict)


# Every state change in PosHub appends here, so these statements sit on every hot path.
# They are built once, against the tables rather than the mapped classes: a statement
# built per call costs more Python than executing it (SQLAlchemy derives its cache key
# from the structure each time), and an ORM-enabled one adds the bulk-ORM machinery.
_chain_head = table_of(AuditChainHead)
_HEAD_FOR_UPDATE = (
    select(_chain_head.c.last_seq, _chain_head.c.last_hash)
    .where(_chain_head.c.id == CHAIN_HEAD_ID)
    .with_for_update()
)
_INSERT_HEAD = insert(_chain_head)
_INSERT_ENTRY = insert(table_of(AuditEntry))
_UPDATE_HEAD = (
    update(_chain_head)
    .where(_chain_head.c.id == CHAIN_HEAD_ID)
    .values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    details: dict[str, Any] | None = None,
) -> Recorded:
    """Append one entry in the caller's transaction."""
    return record_many(session, [Action(actor, action, entity_type, entity_id, details or {})])[0]


def record_many(session: Session, actions: Sequence[Action]) -> list[Recorded]:
    """Append entries in this order in the caller's transaction: one read and one write
    of the chain head however many there are (the checks worker audits a whole batch)."""
    if not actions:
        return []
    # Write what the ORM holds first, as an ORM query would (autoflush): the chain head
    # must be the last row lock the transaction takes on PostgreSQL, or two writers
    # could each wait for the other's lock.
    session.flush()
    head = session.execute(_HEAD_FOR_UPDATE).one_or_none()
    if head is None:
        session.execute(
            _INSERT_HEAD, {"id": CHAIN_HEAD_ID, "last_seq": 0, "last_hash": GENESIS_HASH}
        )
        seq, last_hash = 0, GENESIS_HASH
    else:
        seq, last_hash = head.last_seq, head.last_hash
    key = session_key(session)
    version = LEGACY_VERSION if key is None else KEYED_VERSION
    rows: list[dict[str, Any]] = []
    recorded: list[Recorded] = []
    for item in actions:
        seq += 1
        values: dict[str, Any] = {
            "seq": seq,
            "at": utcnow(),
            "actor_kind": str(item.actor.kind),
            "actor_id": item.actor.id,
            "action": item.action,
            "entity_type": item.entity_type,
            "entity_id": item.entity_id,
            "details": item.details,
            "prev_hash": last_hash,
            "version": version,
        }
        last_hash = digest(canonical_content(**values), version, key)
        values["hash"] = last_hash
        rows.append(values)
        recorded.append(Recorded(seq, last_hash))
    session.execute(_INSERT_ENTRY, rows)
    session.execute(_UPDATE_HEAD, {"seq": seq, "hash": last_hash})
    return recorded


@dataclass(frozen=True)
class VerifyProblem:
    seq: int
    reason: str


def _entries(session: Session, after: int = 0) -> Iterator[AuditEntry]:
    while True:
        batch = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(limits.AUDIT_VERIFY_BATCH_ROWS)
            )
            .scalars()
            .all()
        )
        if not batch:
            return
        yield from batch
        after = batch[-1].seq
        session.expunge_all()


@dataclass(frozen=True)
class Walked:
    """What a walk along the chain found: rows checked, the first problem, where it
    stopped, and whether keyed rows had begun."""

    checked: int
    problem: VerifyProblem | None
    last_seq: int
    last_hash: str
    keyed: bool


def walk(
    session: Session,
    key: bytes | None,
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS_HASH,
    keyed: bool = False,
    checkpoints: dict[int, str] | None = None,
) -> Walked:
    """Check the rows after ``after_seq`` (whose hash is ``after_hash``): gap-free, each
    linked to its predecessor, each hash recomputed (keyed rows under ``key``), no legacy
    row after a keyed one, and each row named in ``checkpoints`` (the anchors) with the
    hash recorded there. Stops at the first problem."""
    expected_seq = after_seq + 1
    prev_hash = after_hash
    checked = 0
    marks = checkpoints or {}

    def stop(seq: int, reason: str) -> Walked:
        return Walked(checked, VerifyProblem(seq, reason), expected_seq - 1, prev_hash, keyed)

    for entry in _entries(session, after_seq):
        if entry.seq != expected_seq:
            return stop(expected_seq, N_("row is missing (deleted)"))
        if entry.prev_hash != prev_hash:
            return stop(entry.seq, N_("previous-hash link is broken"))
        if entry.version == KEYED_VERSION:
            if key is None:
                return stop(
                    entry.seq, N_("keyed rows cannot be verified without the audit key (KEK)")
                )
            keyed = True
            if not hmac.compare_digest(entry_hash(entry, key), entry.hash):
                return stop(
                    entry.seq,
                    N_("content does not match its MAC (edited, or recomputed without the key)"),
                )
        elif entry.version == LEGACY_VERSION:
            if keyed:
                return stop(entry.seq, N_("an unkeyed row follows keyed rows (chain rewritten)"))
            if entry_hash(entry) != entry.hash:
                return stop(entry.seq, N_("content does not match its hash (edited)"))
        else:
            return stop(entry.seq, N_("unknown row version (edited)"))
        anchored = marks.get(entry.seq)
        if anchored is not None and not hmac.compare_digest(anchored, entry.hash):
            return stop(entry.seq, N_("row differs from its anchor (chain rewritten)"))
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    return Walked(checked, None, expected_seq - 1, prev_hash, keyed)


def verify(session: Session, key: bytes | None = None) -> tuple[int, VerifyProblem | None]:
    """Walk the chain; return the number of rows checked and the first problem, if any.
    ``key`` defaults to the session's (``Database.audit_key``). Anchors outside the
    database are checked by ``poshub.core.anchors.verify``, which calls :func:`walk`."""
    walked = walk(session, key if key is not None else session_key(session))
    if walked.problem is not None:
        return walked.checked, walked.problem
    return walked.checked, head_problem(session, walked)


def head_problem(session: Session, walked: Walked) -> VerifyProblem | None:
    """The chain-head row must name the last row walked: else rows were cut off the end."""
    head = session.get(AuditChainHead, CHAIN_HEAD_ID)
    last_seq = head.last_seq if head else 0
    last_hash = head.last_hash if head else GENESIS_HASH
    if last_seq != walked.last_seq or last_hash != walked.last_hash:
        return VerifyProblem(walked.last_seq + 1, N_("rows after this point are missing (deleted)"))
    return None


def recent(
    session: Session, *, entity_id: str | None, limit: int, before_seq: int | None = None
) -> list[AuditEntry]:
    """Newest entries first, optionally for one entity, paged by sequence number."""
    statement = select(AuditEntry)
    if entity_id:
        statement = statement.where(AuditEntry.entity_id == entity_id)
    if before_seq:
        statement = statement.where(AuditEntry.seq < before_seq)
    return list(session.execute(statement.order_by(AuditEntry.seq.desc()).limit(limit)).scalars())
