"""No full PAN, track 2, PIN block or working key at rest after a run (the issue's line).

A demo terminal runs every kind of request through the real gateway and the network
simulator: sign-ons in the three key modes, keyed and swiped cards with and without a PIN,
balance inquiries, sales, voids, refunds, pre-auths, QR payments, a sale the network never
answers (``98``, reversed by store-and-forward) and one the terminal reverses itself, an
unbalanced settlement (its batch upload carries full PANs) — with every log record of the
process written to a file at DEBUG. ``poshub terminal sale`` then runs once as a process,
with its output kept (the receipt). Every secret the terminals held or sent is collected:
PANs, track 2 data, PIN blocks (under the PIK and under the zone PIN key), PIK, MAK, TDK
and the TMK. None may appear, in any encoding, in any file the run left: the gateway's
database with its WAL and shared memory, the simulator's database, the clearing file, the
terminal state files, the log, the receipts. The masked PAN does appear (the scan reads
real data).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from poshub.core.crypto import KeyVault, load_kek
from poshub.core.db import Database, table_of
from poshub.core.settings import Mode, Settings
from poshub.gateway.constants import F_PIN_BLOCK
from poshub.gateway.crypto import WorkingKeys, clear_pin_block, load_network_zpk
from poshub.gateway.models import GatewayTransaction, TerminalSession
from poshub.simulators import receipt
from poshub.simulators.terminal import (
    Card,
    JournalEntry,
    NoAnswer,
    Result,
    TerminalClient,
    mask_pan,
)
from poshub.terminals import hsm
from tests.conftest import TEST_KEK
from tests.gateway.support import DEMO_MID, DEMO_TID, TEST_TMK, Env, running

PIN = "123456"
CARDS = (
    Card(pan="6225880123456783", expiry="3012", pin=PIN),
    Card(pan="6222021234567890128", expiry="3012", pin=PIN, entry="swipe"),
    Card(pan="6214837051629347", expiry="3012"),
    Card(pan="6282481390576245", expiry="3012", entry="swipe"),
)
"""Keyed with a PIN, swiped with a PIN (19 digits), keyed, swiped."""
CLI_CARD = Card(pan="6217001234567893", expiry="3012", pin=PIN, entry="swipe")
QR_CODES = ("6212345678901234567", "134567890123456789", "28012345678901234567")
KEY_MODES = ("001", "004", "003")
CLI_TIMEOUT_SECONDS = 60.0


@dataclass
class Secrets:
    """What must never be written anywhere: text (PANs, track 2) and binary (keys, PIN
    blocks), each searched for in every encoding a careless write could use."""

    texts: set[str] = field(default_factory=set)
    binaries: set[bytes] = field(default_factory=set)

    def card(self, card: Card) -> None:
        self.texts.update({card.pan, card.track2(), card.track2().replace("D", "=")})

    def keys(self, keys: WorkingKeys | None) -> None:
        assert keys is not None
        self.binaries.update(k for k in (keys.pik, keys.mak, keys.tdk) if k is not None)

    def patterns(self) -> dict[bytes, str]:
        """Byte string → a name safe to print (never the secret itself)."""
        found: dict[bytes, str] = {}
        for text in self.texts:
            name = f"{mask_pan(text[:19].split('D')[0].split('=')[0])} ({len(text)} chars)"
            found[text.encode()] = f"{name} as text"
            found[text.encode().hex().encode()] = f"{name} as hex"
            found[text.encode().hex().upper().encode()] = f"{name} as HEX"
            # Packed BCD (a track's separator is the nibble D); an odd count of digits
            # is padded by a nibble of any value, on either side.
            digits = text.replace("=", "D")
            for packed in (digits[:-1], digits[1:]) if len(digits) % 2 else (digits,):
                found[bytes.fromhex(packed)] = f"{name} as BCD"
        for index, secret in enumerate(sorted(self.binaries)):
            name = f"key or PIN block #{index} ({len(secret)} bytes)"
            found[secret] = f"{name} as bytes"
            found[secret.hex().encode()] = f"{name} as hex"
            found[secret.hex().upper().encode()] = f"{name} as HEX"
        return found


class RecordingTerminal(TerminalClient):
    """A terminal that remembers every PIN block it sends."""

    pin_blocks: list[str]

    def card_fields(self, card: Card) -> dict[str, str]:
        fields = super().card_fields(card)
        if F_PIN_BLOCK in fields:
            self.pin_blocks.append(fields[F_PIN_BLOCK])
        return fields


@dataclass
class Run:
    receipts: list[str] = field(default_factory=list)
    pin_blocks: list[str] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Every log record of this process, at DEBUG, in a file."""
    path = tmp_path / "logs" / "gateway.log"
    path.parent.mkdir()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _slip(result: Result, card: Card | None) -> str:
    return receipt.render_receipt(
        result,
        merchant_name="测试商户",
        mid=DEMO_MID,
        tid=DEMO_TID,
        kind=result.kind,
        card_masked=card.masked if card is not None else None,
    )


async def _card_round(terminal: RecordingTerminal, card: Card, run: Run, label: str) -> None:
    """Balance, sale, void, refund and pre-auth cancel with one card."""

    def ok(name: str, result: Result) -> Result:
        run.codes[f"{label} {name}"] = result.response_code
        if result.approved:
            run.receipts.append(_slip(result, card))
        return result

    ok("balance", await terminal.balance(card))
    sale = ok("sale", await terminal.sale(card, 12_34))
    voided = ok("sale to void", await terminal.sale(card, 5_67))
    ok("void", await terminal.void(_entry(terminal, voided), card))
    ok("refund", await terminal.refund(_entry(terminal, sale), card, 1_00))
    preauth = ok("preauth", await terminal.preauth(card, 20_00))
    ok("preauth cancel", await terminal.preauth_cancel(_entry(terminal, preauth), card))


def _entry(terminal: TerminalClient, result: Result) -> JournalEntry:
    assert result.rrn is not None
    entry = terminal.state.find(result.rrn)
    assert entry is not None
    return entry


async def _scenario(env: Env, data_dir: Path, secrets: Secrets, run: Run) -> None:
    state_path = data_dir / f"terminal-{DEMO_TID}.json"
    terminal = RecordingTerminal(
        "127.0.0.1",
        env.port,
        tid=DEMO_TID,
        mid=DEMO_MID,
        tmk=TEST_TMK,
        timeout_seconds=5.0,
        on_state_change=lambda state: state.save(state_path),
    )
    terminal.pin_blocks = run.pin_blocks
    async with terminal:
        for mode in KEY_MODES:
            run.codes[f"sign-on {mode}"] = (await terminal.sign_on(mode)).response_code
            secrets.keys(terminal.keys)
            for index, card in enumerate(CARDS):
                await _card_round(terminal, card, run, f"{mode} card {index}")
        for code in QR_CODES:
            qr = await terminal.qr_sale(code, 8_00)
            run.codes[f"qr sale {code[:2]}"] = qr.response_code
            run.receipts.append(_slip(qr, None))
        qr_void = await terminal.qr_sale(QR_CODES[0], 9_00)
        run.codes["qr void"] = (await terminal.qr_void(_entry(terminal, qr_void))).response_code
        run.codes["qr refund"] = (
            await terminal.qr_refund(_entry(terminal, qr), 1_00)
        ).response_code
        # Never answered upstream: the gateway answers 98 and reverses by store-and-forward.
        run.codes["timeout"] = (await terminal.sale(CARDS[0], 1_91)).response_code
        # Given up by the terminal before the gateway's answer: the terminal reverses.
        terminal.timeout_seconds = 0.3
        with pytest.raises(NoAnswer):
            await terminal.sale(CARDS[1], 2_91)
        terminal.timeout_seconds = 5.0
        await asyncio.sleep(1.0)  # the gateway's own 98 comes first
        run.codes["terminal reversal"] = (await terminal.reverse()).response_code
        # Unbalanced (one sale left out): the batch upload sends full PANs.
        dropped = next(e for e in terminal.state.journal if e.kind == "sale" and not e.voided)
        terminal.state.journal.remove(dropped)
        settled = await terminal.settle()
        assert settled.settlement is not None
        run.codes["settle"] = settled.response_code
        run.codes["uploaded"] = str(settled.settlement.uploaded)
    for _ in range(100):
        if env.gateway.store_and_forward.acknowledged >= 2:
            break
        await asyncio.sleep(0.05)
    run.codes["reversals acknowledged"] = str(env.gateway.store_and_forward.acknowledged)
    # ``poshub terminal sale`` as a process: its state file, output and receipt.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "poshub.cli",
        "terminal",
        "sale",
        "--host",
        "127.0.0.1",
        "--port",
        str(env.port),
        "--card",
        CLI_CARD.pan,
        "--expiry",
        CLI_CARD.expiry,
        "--pin",
        PIN,
        "--swipe",
        "--amount",
        "43.21",
        env=_cli_env(data_dir / "cli"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_SECONDS)
    (data_dir / "cli" / "stdout.txt").write_bytes(stdout)
    (data_dir / "cli" / "stderr.txt").write_bytes(stderr)
    run.codes["cli"] = str(process.returncode)
    await env.simulator.write_clearing_file(env.simulator.business_date())


def _cli_env(data_dir: Path) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSHUB_")}
    env.update({"POSHUB_MODE": "test", "POSHUB_DATA_DIR": str(data_dir)})
    env["POSHUB_LOG_LEVEL"] = "DEBUG"
    return env


def _scan(root: Path, patterns: dict[bytes, str], extra: dict[str, bytes]) -> dict[str, bytes]:
    """Every file under ``root`` (and the named texts): name → content, after checking no
    pattern occurs in any."""
    contents = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    contents.update(extra)
    leaks = [
        f"{name} in {where}"
        for where, data in contents.items()
        for pattern, name in patterns.items()
        if pattern in data
    ]
    assert not leaks, leaks
    return contents


def _session_keys(database: Database, vault: KeyVault) -> WorkingKeys:
    """The keys the gateway holds for the demo terminal (the CLI's, after it ran)."""
    table = table_of(TerminalSession)
    with database.unit_of_work(read_only=True) as uow:
        sealed = uow.session.execute(
            select(table.c.keys_sealed).where(table.c.tid == DEMO_TID)
        ).scalar_one()
    return WorkingKeys.deserialise(
        bytes.fromhex(vault.decrypt(sealed, context=f"terminal-session:{DEMO_TID}"))
    )


def test_no_pan_pin_block_or_key_in_files_logs_or_receipts(
    tmp_path: Path, sqlite_demo_database: Database, debug_log: Path
) -> None:
    database = sqlite_demo_database
    settings = Settings(
        mode=Mode.TEST,
        data_dir=tmp_path,
        kek=TEST_KEK,
        database_url=database.engine.url.render_as_string(hide_password=False),
        gateway_upstream_timeout_seconds=1.0,
    )
    secrets, run = Secrets(), Run()
    for card in (*CARDS, CLI_CARD):
        secrets.card(card)
    secrets.binaries.add(TEST_TMK)
    during: dict[str, bytes] = {}

    async def main() -> None:
        async with running(settings, database) as env:
            await _scenario(env, tmp_path, secrets, run)
            await env.simulator.flush()
            during.update(_read_all(tmp_path))  # the WAL files, while they exist

    asyncio.run(main())

    vault = KeyVault(load_kek(settings))
    cli_keys = _session_keys(database, vault)
    secrets.keys(cli_keys)
    zpk = load_network_zpk(settings)
    clear_blocks = [clear_pin_block(PIN, c.pan) for c in (*CARDS, CLI_CARD) if c.pin]
    secrets.binaries.update(bytes.fromhex(block) for block in run.pin_blocks)
    secrets.binaries.add(hsm.encrypt_ecb(cli_keys.pik, clear_pin_block(PIN, CLI_CARD.pan)))
    secrets.binaries.update(zpk.encrypt_block(block) for block in clear_blocks)

    assert run.codes.pop("cli") == "0", (tmp_path / "cli" / "stderr.txt").read_text()
    assert run.codes.pop("timeout") == "98"
    assert int(run.codes.pop("uploaded")) > 0
    assert run.codes.pop("reversals acknowledged") == "2"
    assert {name: code for name, code in run.codes.items() if code != "00"} == {}
    assert len(run.pin_blocks) >= 3 * 2 * 5  # PIN cards × key modes × PIN requests

    patterns = secrets.patterns()
    receipts = {f"receipt {i}": text.encode() for i, text in enumerate(run.receipts)}
    _scan_snapshot(during, patterns)
    after = _scan(tmp_path, patterns, receipts)

    # Not vacuous: what was scanned holds the masked cards, the log the requests.
    names = set(during) | set(after)
    for expected in ("poshub.db", "poshub.db-wal", "poshub.db-shm", "network-sim.db-wal"):
        assert expected in names, sorted(names)
    assert any(name.startswith("clearing/") for name in names)
    assert any(name.startswith("cli/terminal-") for name in names)
    journal = _journal(database)
    database_bytes = during["poshub.db"] + during.get("poshub.db-wal", b"") + after["poshub.db"]
    for card in (*CARDS, CLI_CARD):
        assert (card.masked, card.last4) in journal
        assert card.masked.encode() in database_bytes
    assert "gateway listening" in debug_log.read_text(encoding="utf-8")
    assert CLI_CARD.masked.encode() in after["cli/stdout.txt"]
    assert any(CARDS[0].masked in text for text in run.receipts)


def _read_all(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _scan_snapshot(contents: dict[str, bytes], patterns: dict[bytes, str]) -> None:
    leaks = [
        f"{name} in {where} (while running)"
        for where, data in contents.items()
        for pattern, name in patterns.items()
        if pattern in data
    ]
    assert not leaks, leaks


def _journal(database: Database) -> set[tuple[str | None, str | None]]:
    table = table_of(GatewayTransaction)
    with database.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(select(table.c.pan_masked, table.c.pan_last4)).all()
    return {(row.pan_masked, row.pan_last4) for row in rows}
