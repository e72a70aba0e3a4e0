"""The terminal simulator against spec bytes and a scripted host (tests/simulators/terminal_host)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from poshub.core.settings import Settings
from poshub.gateway import codec
from poshub.gateway.fields import Settlement48, parse_batch_upload
from poshub.simulators import terminal as term
from poshub.simulators.terminal import (
    Card,
    JournalEntry,
    Kind,
    NoAnswer,
    ResponseMacError,
    ReversalFailed,
    SignOnRefused,
    TerminalClient,
    TerminalState,
    parse_amount_fen,
)
from tests.simulators.terminal_host import (
    BAD_MAC,
    CLOSE,
    HOST_DATE,
    MAK,
    PIK,
    SILENT,
    TMK,
    V3_KEYS,
    ScriptedHost,
    host_in_thread,
)

T = TypeVar("T")
PAN = "6225880123456783"
CARD = Card(PAN, "3012", pin="123456")
CARD_NO_PIN = Card(PAN, "3012")
TID, MID = "10000001", "898340154110001"

V4 = (
    "006B 6000030000 603100000000 0200 702404C000C09811"
    " 16 6225880123456783 000000 000000001234 000123 3012 0110 00 12"
    " 3130303030303031 383938333430313534313130303031 313536"
    " 72B4F8429002FD2F 2600000000000000 0014 22000001000600 4233463933434433"
)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def client_for(host: ScriptedHost, **kwargs: Any) -> TerminalClient:
    # Long enough for a loaded CI machine; the tests of silence wait it out once or twice.
    kwargs.setdefault("timeout_seconds", 1.0)
    return TerminalClient("127.0.0.1", host.port, tid=TID, mid=MID, tmk=TMK, **kwargs)


async def started(host: ScriptedHost, **kwargs: Any) -> TerminalClient:
    await host.start()
    client = client_for(host, **kwargs)
    await client.sign_on()
    return client


def financial(host: ScriptedHost) -> list[dict[str, str]]:
    return [m for m in host.received if m["t"] not in ("0800", "0820")]


# --- Exact bytes ----------------------------------------------------------------------------
def test_v4_sale_frame_byte_for_byte() -> None:
    """Spec §12 V4: keys of V3, STAN 000123, batch 000001, keyed card with PIN, ¥12.34.
    V4 carries 60.6 (14-digit 60), which the client sends when ``field60_6`` is set."""
    state = TerminalState(tid=TID, mid=MID, stan=122, batch="000001")
    client = TerminalClient("127.0.0.1", 1, tid=TID, mid=MID, tmk=TMK, state=state, field60_6="0")
    client.install_keys(V3_KEYS)
    message = client.build_request(
        Kind.SALE, stan=state.next_stan(), card=CARD, amount_fen=parse_amount_fen("12.34")
    )
    assert client.encode_frame(message).hex().upper() == V4.replace(" ", "")


def test_financial_60_has_13_digits_and_management_11() -> None:
    client = TerminalClient("127.0.0.1", 1, tid=TID, mid=MID, tmk=TMK)
    client.install_keys(V3_KEYS)
    assert client.financial60("22") == "2200000100060"
    message = client.build_request(Kind.SALE, stan="000001", card=CARD_NO_PIN, amount_fen=1)
    assert message["60"] == "2200000100060"
    assert message["22"] == "012"
    assert "52" not in message
    assert "26" not in message
    assert "53" not in message


def test_swiped_card_sends_track2_and_no_pan() -> None:
    client = TerminalClient("127.0.0.1", 1, tid=TID, mid=MID, tmk=TMK)
    client.install_keys(V3_KEYS)
    card = Card(PAN, "3012", pin="123456", entry="swipe")
    message = client.build_request(Kind.SALE, stan="000001", card=card, amount_fen=100)
    assert "2" not in message
    assert "14" not in message
    assert message["35"].startswith(PAN + "D3012101")
    assert message["22"] == "021"
    decoded = codec.decode(codec.split_envelope(client.encode_frame(message)[2:]).body)
    assert decoded["35"] == message["35"]
    reversal = TerminalClient.reversal_of(message, "98")
    assert reversal["2"] == PAN
    assert "35" not in reversal
    assert "52" not in reversal


def test_single_length_pik_sets_53_to_single_des() -> None:
    client = TerminalClient("127.0.0.1", 1, tid=TID, mid=MID, tmk=TMK)
    client.install_keys(type(V3_KEYS)(pik=PIK[:8], mak=MAK))
    message = client.build_request(Kind.SALE, stan="000001", card=CARD, amount_fen=100)
    assert message["53"] == "2000000000000000"


def test_stan_wraps_after_999999() -> None:
    state = TerminalState(tid=TID, mid=MID, stan=999_998)
    assert state.next_stan() == "999999"
    assert state.next_stan() == "000001"


def test_card_repr_never_shows_the_pan() -> None:
    assert PAN not in repr(CARD)
    assert "622588******6783" in repr(CARD)
    with pytest.raises(ValueError, match="YYMM"):
        Card(PAN, "3013")


# --- Sign-on ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["001", "003", "004"])
def test_sign_on_verifies_check_values_and_adopts_the_batch(mode: str) -> None:
    host = ScriptedHost(batch="000007")

    async def scenario() -> TerminalClient:
        await host.start()
        client = client_for(host)
        result = await client.sign_on(mode)
        assert result.response_code == "00"
        assert "62" not in result.response  # keys never leave through a Result
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    assert client.signed_on
    assert client.state.batch == "000007"
    assert client.keys is not None
    assert client.keys.mak == MAK
    assert client.keys.pik == (PIK[:8] if mode == "001" else PIK)
    sign_on = host.received[0]
    assert sign_on["60"] == "00000001" + mode
    assert sign_on["63"] == "01 "


def test_wrong_check_value_refuses_the_sign_on_and_keeps_no_key() -> None:
    host = ScriptedHost(corrupt_check_value=True)

    async def scenario() -> TerminalClient:
        await host.start()
        client = client_for(host)
        client.install_keys(V3_KEYS)  # keys of an earlier sign-on are dropped too
        with pytest.raises(SignOnRefused, match="check value"):
            await client.sign_on()
        await client.close()
        await host.stop()
        return client

    assert not run(scenario).signed_on


def test_unknown_terminal_sign_on_names_the_tid() -> None:
    host = ScriptedHost(sign_on_code="97")

    async def scenario() -> None:
        await host.start()
        client = client_for(host)
        with pytest.raises(SignOnRefused) as refused:
            await client.sign_on()
        assert refused.value.code == "97"
        assert TID in str(refused.value)
        assert "POS终端号找不到" in str(refused.value)
        await client.close()
        await host.stop()

    run(scenario)


# --- Transactions -------------------------------------------------------------------------------
def test_sale_is_macd_and_the_answer_verified_and_journalled() -> None:
    host = ScriptedHost()

    async def scenario() -> TerminalClient:
        client = await started(host)
        result = await client.sale(CARD, 1234)
        await client.close()
        await host.stop()
        assert result.approved
        assert result.rrn == "000000000001"
        assert result.auth_code == "A00001"
        assert result.host_date == HOST_DATE
        assert result.amount_fen == 1234
        assert result.wallet == "CUP"
        assert result.slip_text == "中国银联"
        assert result.card_masked == "622588******6783"
        assert "2" not in result.response
        return client

    client = run(scenario)
    sale, frame = host.received[-1], host.frames[-1]
    assert V3_KEYS.verify_mac(codec.split_envelope(frame[2:]).body)
    assert sale["11"] == "000002"  # the sign-on used 000001
    entry = client.state.journal[0]
    assert (entry.kind, entry.amount_fen, entry.pan_masked, entry.pan_last4) == (
        "sale",
        1234,
        "622588******6783",
        "6783",
    )
    assert client.state.pending_reversal is None


def test_a_declined_sale_is_not_journalled() -> None:
    host = ScriptedHost(codes={"000000010051": "51"})

    async def scenario() -> TerminalClient:
        client = await started(host)
        result = await client.sale(CARD, 10051)
        assert result.response_code == "51"
        assert not result.approved
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    assert client.state.journal == []
    assert client.state.pending_reversal is None


def test_unanswered_sale_is_reversed_with_98_and_the_original_stan_before_the_next() -> None:
    host = ScriptedHost(script=[SILENT])

    async def scenario() -> None:
        client = await started(host)
        with pytest.raises(NoAnswer):
            await client.sale(CARD, 1234)
        assert client.reversal_pending
        result = await client.sale(CARD, 500)
        assert result.approved
        await client.close()
        await host.stop()

    run(scenario)
    first, reversal, second = financial(host)
    assert (first["t"], reversal["t"], second["t"]) == ("0200", "0400", "0200")
    assert reversal["39"] == "98"
    assert reversal["11"] == first["11"]
    assert reversal["60"] == first["60"]
    for key in ("2", "3", "4", "14", "22", "25", "41", "42", "49"):
        assert reversal[key] == first[key]
    for key in ("26", "35", "52", "53"):
        assert key not in reversal
    assert int(second["11"]) == int(first["11"]) + 1


def test_connection_closed_after_sending_owes_a_reversal() -> None:
    host = ScriptedHost(script=[CLOSE])

    async def scenario() -> TerminalClient:
        client = await started(host)
        with pytest.raises(NoAnswer):
            await client.sale(CARD, 1234)
        result = await client.reverse()
        assert result.kind == "reversal"
        assert result.response_code == "00"
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    assert client.state.pending_reversal is None
    assert [m["t"] for m in financial(host)] == ["0200", "0400"]


def test_bad_mac_on_an_approval_is_reversed_with_a0() -> None:
    host = ScriptedHost(script=[BAD_MAC])

    async def scenario() -> TerminalClient:
        client = await started(host)
        with pytest.raises(ResponseMacError) as error:
            await client.sale(CARD, 1234)
        assert error.value.reversal_owed
        await client.sale(CARD, 800)
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    first, reversal, _ = financial(host)
    assert reversal["t"] == "0400"
    assert reversal["39"] == "A0"
    assert reversal["11"] == first["11"]
    assert [e.amount_fen for e in client.state.journal] == [800]


def test_bad_mac_on_a_decline_owes_nothing() -> None:
    host = ScriptedHost(script=[BAD_MAC], codes={"000000010051": "51"})

    async def scenario() -> TerminalClient:
        client = await started(host)
        with pytest.raises(ResponseMacError) as error:
            await client.sale(CARD, 10051)
        assert not error.value.reversal_owed
        await client.close()
        await host.stop()
        return client

    assert run(scenario).state.pending_reversal is None


def test_reversal_is_given_up_after_three_tries() -> None:
    host = ScriptedHost(script=[SILENT, SILENT, SILENT, SILENT])

    async def scenario() -> TerminalClient:
        client = await started(host, timeout_seconds=0.5)
        with pytest.raises(NoAnswer):
            await client.sale(CARD, 1234)
        with pytest.raises(ReversalFailed) as failed:
            await client.sale(CARD, 500)
        assert failed.value.abandoned
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    assert [m["t"] for m in financial(host)] == ["0200", "0400", "0400", "0400"]
    assert client.state.pending_reversal is None


def test_refund_is_resent_identically_until_answered() -> None:
    host = ScriptedHost(script=[SILENT, SILENT])

    async def scenario() -> TerminalClient:
        client = await started(host)
        host.script.clear()
        sale = await client.sale(CARD, 5000)
        host.script.extend([SILENT, SILENT])
        original = client.state.find(sale.rrn or "")
        assert original is not None
        refund = await client.refund(original, CARD, 2000)
        assert refund.approved
        assert refund.original is original  # for the slip's 备注 (original voucher, RRN)
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    refunds = [f for f, m in zip(host.frames, host.received, strict=True) if m["t"] == "0220"]
    assert len(refunds) == 3
    assert refunds[0] == refunds[1] == refunds[2]
    refund = host.received[-1]
    assert refund["3"] == "200000"
    assert refund["37"] == "000000000001"
    assert refund["61"] == "000001" + "000002" + HOST_DATE
    assert refund["63"] == "CUP"
    assert "38" not in refund
    assert client.state.totals().credit_fen == 2000
    assert client.state.pending_advice is None


def test_void_references_the_original_and_removes_it_from_the_totals() -> None:
    host = ScriptedHost()

    async def scenario() -> TerminalClient:
        client = await started(host)
        sale = await client.sale(CARD, 1234)
        await client.sale(CARD, 100)
        original = client.state.find(sale.rrn or "")
        assert original is not None
        void = await client.void(original, CARD_NO_PIN)
        assert void.approved
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    void = host.received[-1]
    assert (void["3"], void["25"], void["60"][:2]) == ("200000", "00", "23")
    assert void["4"] == "000000001234"
    assert void["37"] == "000000000001"
    assert void["38"] == "A00001"
    assert void["61"] == "000001000002"
    assert client.state.journal[0].voided
    totals = client.state.totals()
    assert (totals.debit_count, totals.debit_fen) == (1, 100)


def test_preauth_cancel_and_completion_carry_the_preauth_reference() -> None:
    host = ScriptedHost()

    async def scenario() -> TerminalClient:
        client = await started(host)
        preauth = await client.preauth(CARD, 10000)
        original = client.state.find(preauth.rrn or "")
        assert original is not None
        completion = await client.completion(original, CARD, 11000)
        assert completion.approved
        done = client.state.find(completion.rrn or "")
        assert done is not None
        await client.completion_void(done, CARD)
        second = await client.preauth(CARD, 300)
        second_entry = client.state.find(second.rrn or "")
        assert second_entry is not None
        await client.preauth_cancel(second_entry, CARD)
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    preauth, completion, completion_void, _, cancel = financial(host)
    assert (preauth["t"], preauth["3"], preauth["25"], preauth["60"][:2]) == (
        "0100",
        "030000",
        "06",
        "10",
    )
    assert (completion["t"], completion["3"], completion["60"][:2]) == ("0200", "000000", "20")
    assert completion["38"] == "A00001"
    assert completion["61"] == "000001" + preauth["11"] + HOST_DATE
    assert (completion_void["3"], completion_void["25"], completion_void["60"][:2]) == (
        "200000",
        "06",
        "21",
    )
    assert len(completion_void["61"]) == 12
    assert (cancel["t"], cancel["3"], cancel["60"][:2], cancel["4"]) == (
        "0100",
        "200000",
        "11",
        "000000000300",
    )
    assert len(cancel["61"]) == 16
    totals = client.state.totals()
    assert totals.debit_count == 0  # pre-auths never count; the completion was voided


def test_qr_sale_and_void_carry_no_card_fields() -> None:
    host = ScriptedHost()

    async def scenario() -> TerminalClient:
        client = await started(host)
        sale = await client.qr_sale("134567890123456789", 2500)
        assert sale.approved
        assert sale.wallet == "WXP"
        assert sale.qr_voucher == "V0000000000000000001"
        original = client.state.find(sale.rrn or "")
        assert original is not None
        assert original.qr_voucher == sale.qr_voucher
        await client.qr_void(original)
        await client.close()
        await host.stop()
        return client

    run(scenario)
    sale, void = financial(host)
    assert sale["22"] == "032"
    assert sale["59"] == "A3018134567890123456789"
    assert void["59"] == "A4020V0000000000000000001"
    for message in (sale, void):
        for key in ("2", "14", "35", "52", "53", "26"):
            assert key not in message


def test_balance_inquiry_reads_field_54() -> None:
    host = ScriptedHost()

    async def scenario() -> None:
        client = await started(host)
        result = await client.balance(CARD)
        assert result.balance_fen == 12345
        assert result.amount_fen is None
        await client.close()
        await host.stop()

    run(scenario)
    inquiry = host.received[-1]
    assert inquiry["3"] == "310000"
    assert "4" not in inquiry
    assert inquiry["60"][:2] == "01"


def test_processing_requirement_3_drops_the_keys() -> None:
    host = ScriptedHost()

    async def scenario() -> TerminalClient:
        client = await started(host)
        host.requirement = 3
        result = await client.sale(CARD, 100)
        assert result.processing_requirement == 3
        await client.close()
        await host.stop()
        return client

    assert not run(scenario).signed_on


def test_parameters_download_keeps_the_merchant_name() -> None:
    host = ScriptedHost()

    async def scenario() -> TerminalClient:
        await host.start()
        client = client_for(host)
        result = await client.parameters()
        assert result.parameters["12"] == "30"
        await client.close()
        await host.stop()
        return client

    assert run(scenario).state.merchant_name == "测试商户"
    assert [m["60"][8:11] for m in host.received] == ["360", "361"]


def test_echo_and_sign_off() -> None:
    host = ScriptedHost()

    async def scenario() -> TerminalClient:
        client = await started(host)
        assert (await client.echo()).response_code == "00"
        assert (await client.sign_off()).response_code == "00"
        await client.close()
        await host.stop()
        return client

    assert not run(scenario).signed_on
    assert [m["60"][8:11] for m in host.received] == ["003", "301", "002"]


# --- Settlement --------------------------------------------------------------------------------
def test_balanced_settlement_ends_with_207_and_closes_the_batch() -> None:
    host = ScriptedHost(settle_result="1")

    async def scenario() -> TerminalClient:
        client = await started(host)
        first = await client.sale(CARD, 1000)
        await client.qr_sale("134567890123456789", 2000)
        await client.sale(CARD, 999)  # voided below
        voided = client.state.journal[-1]
        await client.void(voided, CARD)
        entry = client.state.find(first.rrn or "")
        assert entry is not None
        await client.refund(entry, CARD, 300)
        await client.balance(CARD)
        result = await client.settle()
        assert result.settlement is not None
        assert result.settlement.closed
        assert result.settlement.balanced
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    settlement = next(m for m in host.received if m["t"] == "0500")
    totals = Settlement48.parse(settlement["48"])
    assert totals.domestic.digits() == f"{3000:012d}002{300:012d}001"
    assert settlement["60"] == "00000001201"
    assert settlement["63"] == "01 "
    end = host.received[-1]
    assert (end["t"], end["60"][8:11], end["48"]) == ("0320", "207", "0000")
    assert client.state.batch == "000002"
    assert client.state.journal == []


def test_unbalanced_settlement_uploads_in_chunks_of_eight_then_202() -> None:
    host = ScriptedHost(settle_result="2")

    async def scenario() -> TerminalClient:
        client = await started(host)
        for amount in range(101, 111):
            await client.sale(CARD, amount)
        await client.qr_sale("134567890123456789", 2000)
        result = await client.settle()
        assert result.settlement is not None
        assert result.settlement.uploaded == 11
        assert result.settlement.closed
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    uploads = [m for m in host.received if m["t"] == "0320"]
    assert [m["60"][8:11] for m in uploads] == ["201", "201", "202"]
    first, second = parse_batch_upload(uploads[0]["48"]), parse_batch_upload(uploads[1]["48"])
    assert (len(first), len(second)) == (8, 3)
    assert first[0].pan_digits == PAN.rjust(20, "0")
    assert first[0].amount_fen == 101
    assert second[-1].pan_digits == "0" * 20  # the QR payment
    assert uploads[-1]["48"] == "0011"
    stans = [m["11"] for m in uploads]
    assert len(set(stans)) == 3
    assert client.state.batch == "000002"


# --- State file -----------------------------------------------------------------------------------
def test_state_file_never_holds_pan_track_pin_or_keys(tmp_path: Path) -> None:
    path = tmp_path / "terminal.json"
    host = ScriptedHost(script=[])

    async def scenario() -> TerminalClient:
        client = await started(host, on_state_change=lambda s: s.save(path))
        await client.sale(CARD, 1000)
        await client.sale(Card(PAN, "3012", pin="123456", entry="swipe"), 2000)
        host.script.append(SILENT)
        with pytest.raises(NoAnswer):
            await client.sale(CARD, 3000)
        await client.close()
        await host.stop()
        return client

    client = run(scenario)
    text = path.read_text(encoding="utf-8")
    assert client.state.pending_reversal is not None
    forbidden = [PAN, PAN[6:12], "123456", "D3012", PIK.hex().upper(), MAK.hex().upper()]
    forbidden += [TMK.hex().upper(), host.received[-1]["52"]]
    for secret in forbidden:
        assert secret not in text.upper()
    saved = json.loads(text)
    assert saved["pending_reversal"]["card_masked"] == "622588******6783"
    assert "2" not in saved["pending_reversal"]["fields"]
    assert saved["stan"] == client.state.stan


def test_reloaded_reversal_needs_the_card_again(tmp_path: Path) -> None:
    path = tmp_path / "terminal.json"
    host = ScriptedHost(script=[SILENT])

    async def scenario() -> None:
        client = await started(host, on_state_change=lambda s: s.save(path))
        with pytest.raises(NoAnswer):
            await client.sale(CARD, 1234)
        await client.close()
        # A new process: the state from the file, keys from a new sign-on, no card yet.
        reloaded = client_for(host, state=TerminalState.load(path, tid=TID, mid=MID))
        await reloaded.sign_on()
        with pytest.raises(term.CardRequired, match=r"622588\*\*\*\*\*\*6783"):
            await reloaded.reverse()
        with pytest.raises(term.CardRequired):
            await reloaded.reverse(card=Card("6225880000000001", "3012"))
        result = await reloaded.reverse(card=CARD_NO_PIN)
        assert result.response_code == "00"
        await reloaded.close()
        await host.stop()

    run(scenario)
    first, reversal = financial(host)
    assert reversal["2"] == PAN
    assert reversal["14"] == "3012"
    assert reversal["11"] == first["11"]
    assert reversal["39"] == "98"


def test_state_round_trips_through_json(tmp_path: Path) -> None:
    state = TerminalState(tid=TID, mid=MID, stan=41, batch="000003", merchant_name="测试")
    state.journal.append(
        JournalEntry(kind="sale", stan="000041", batch="000003", amount_fen=5, rrn="1")
    )
    state.save(tmp_path / "s.json")
    loaded = TerminalState.load(tmp_path / "s.json", tid=TID, mid=MID)
    assert loaded.to_json() == state.to_json()
    with pytest.raises(ValueError, match="belongs to terminal"):
        TerminalState.load(tmp_path / "s.json", tid="10000002", mid=MID)


# --- Command line -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fen"), [("12.34", 1234), ("0.01", 1), ("7", 700), ("7.5", 750), (" 3.00 ", 300)]
)
def test_amounts_in_yuan_become_fen(text: str, fen: int) -> None:
    assert parse_amount_fen(text) == fen


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12.345", "more than two decimal places"),
        ("-1", "negative"),
        ("abc", "not a number"),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        ("1e3", "not a number"),
        ("NaN", "not a number"),
        ("99999999999", "too large"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount_fen(text)


def _parser(tmp_path: Path, mode: str = "test") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poshub")
    sub = parser.add_subparsers(dest="command", required=True)
    terminal = sub.add_parser("terminal")
    term.add_cli(
        terminal.add_subparsers(dest="terminal_command", required=True),
        lambda args: Settings(mode=mode, data_dir=tmp_path),
    )
    return parser


@pytest.mark.parametrize(
    ("amount", "message"),
    [("12.345", "more than two decimal places"), ("-1", "negative"), ("abc", "not a number")],
)
def test_cli_bad_amount_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], amount: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser(tmp_path).parse_args(["terminal", "sale", "--amount", amount])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_sale_prints_the_slip_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with host_in_thread(ScriptedHost()) as host:
        args = _parser(tmp_path).parse_args(
            ["terminal", "sale", "--amount", "12.34", "--port", str(host.port), "--pin", "123456"]
        )
        assert args.func(args) == 0
        out = capsys.readouterr().out
        assert "银联POS签购单" in out
        assert "RMB ¥12.34" in out
        assert "622588******6783" in out
        assert PAN not in out
        assert "00 承兑或交易成功 / Approved" in out
        assert "测试商户" in out  # downloaded after the sign-on
        rrn = host.received[-1]
        assert rrn["t"] == "0200"
        state = json.loads((tmp_path / f"terminal-{TID}.json").read_text(encoding="utf-8"))
        assert state["journal"][0]["amount_fen"] == 1234

        void = _parser(tmp_path).parse_args(
            ["terminal", "void", "--rrn", "000000000001", "--port", str(host.port)]
        )
        assert void.func(void) == 0
        assert "RMB -¥12.34" in capsys.readouterr().out


def test_cli_decline_exits_1_with_the_meaning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with host_in_thread(ScriptedHost(codes={"000000010051": "51"})) as host:
        args = _parser(tmp_path).parse_args(
            ["terminal", "sale", "--amount", "100.51", "--port", str(host.port), "--lang", "en"]
        )
        assert args.func(args) == 1
    assert "51 资金不足 / Insufficient funds" in capsys.readouterr().out


def test_cli_void_of_an_unknown_rrn_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with host_in_thread(ScriptedHost()) as host:
        args = _parser(tmp_path).parse_args(
            ["terminal", "void", "--rrn", "999999999999", "--port", str(host.port)]
        )
        assert args.func(args) == 2
    assert "no transaction with reference number 999999999999" in capsys.readouterr().err


def test_cli_warns_about_the_test_key_in_production(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The simulator is a terminal: a production host refuses the key, the tool only warns.
    args = _parser(tmp_path, mode="production").parse_args(["terminal", "echo", "--port", "1"])
    assert args.func(args) != 0  # nothing listens on port 1
    assert "a production host refuses it" in capsys.readouterr().err


def test_cli_timeout_reverses_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with host_in_thread(ScriptedHost(script=[SILENT])) as host:
        args = _parser(tmp_path).parse_args(
            ["terminal", "sale", "--amount", "1", "--port", str(host.port), "--timeout", "0.3"]
        )
        assert args.func(args) == 1
        assert [m["t"] for m in financial(host)] == ["0200", "0400"]
    err = capsys.readouterr().err
    assert "no answer" in err
    assert "reversal" in err
    state = json.loads((tmp_path / f"terminal-{TID}.json").read_text(encoding="utf-8"))
    assert state["pending_reversal"] is None


def test_a_full_batch_asks_for_settlement_first() -> None:
    host = ScriptedHost()

    async def scenario() -> None:
        client = await started(host)
        entry = JournalEntry(kind="sale", stan="000001", batch="000001", amount_fen=1)
        client.state.journal.extend([entry] * term.BATCH_ENTRIES_MAX)
        with pytest.raises(term.BatchFull, match="settle first"):
            await client.sale(CARD, 100)
        assert (await client.balance(CARD)).approved  # moves no money: still allowed
        await client.close()
        await host.stop()

    run(scenario)
