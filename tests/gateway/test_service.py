"""The staff-facing gateway use cases (poshub/gateway/service.py) over journal rows
written directly: each search filter narrows, paging is bounded, bad input names its
field, a transaction's timeline runs from its original, and a terminal's activity shows
its session (check values, never keys) and batches."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from poshub.core import limits
from poshub.core.db import Database
from poshub.core.errors import NotFound, ValidationFailed
from poshub.gateway import service
from poshub.gateway.constants import Rc
from poshub.gateway.models import TxnKind
from poshub.gateway.repository import SearchFilter
from poshub.gateway.response_codes import RESPONSE_CODE_MEANINGS, response_code_meaning
from poshub.gateway.service import PageRequest, SearchInput
from tests.gateway.journal_rows import MID, MOMENT, TID, TODAY, batch, terminal_session, txn, write

OTHER_MID = "898340154110002"
OTHER_TID = "10000002"
DAY = dt.timedelta(days=1)


def parse(**raw: Any) -> tuple[SearchFilter, PageRequest]:
    return service.parse_search(SearchInput(**raw), today=TODAY)


def rrns(database: Database, **raw: Any) -> list[str]:
    criteria, page = parse(**raw)
    with database.unit_of_work(read_only=True) as uow:
        result = service.search_transactions(uow.session, criteria, page)
        return [row.rrn for row in result.rows]


def field_errors(**raw: Any) -> dict[str, str]:
    """``{field: code}`` of the 422 that ``raw`` gets."""
    with pytest.raises(ValidationFailed) as caught:
        parse(**raw)
    return {e.field: e.code for e in caught.value.errors}


@pytest.fixture
def journal(database: Database) -> Database:
    """Eight rows that differ in one respect each from the first, a plain sale."""
    write(
        database,
        txn("000000000001"),
        txn("000000000002", mid=OTHER_MID, tid=OTHER_TID, received_at=MOMENT + dt.timedelta(1)),
        txn("000000000003", received_at=MOMENT - 3 * DAY),
        txn("000000000004", pan_last4="9876", pan_masked="622848*********9876"),
        txn(
            "000000000005",
            response_code="51",
            status="declined",
            auth_code=None,
            received_at=MOMENT + dt.timedelta(minutes=1),
        ),
        txn(
            "000000000006",
            kind="void",
            type_code="23",
            processing_code="200000",
            original_rrn="000000000001",
            received_at=MOMENT + dt.timedelta(minutes=2),
        ),
        txn("000000000007", received_at=MOMENT - 30 * DAY),
        txn(
            "000000000008",
            kind="sign_on",
            mti="0800",
            amount_fen=None,
            pan_masked=None,
            pan_last4=None,
            pan_token=None,
            received_at=MOMENT - dt.timedelta(hours=3),
        ),
    )
    return database


# --- Filters -------------------------------------------------------------------------------


def test_without_filters_the_last_seven_days_newest_first(journal: Database) -> None:
    # 000000000002 is tomorrow (the window ends today); 000000000007 is 30 days old.
    assert rrns(journal) == [
        "000000000006",
        "000000000005",
        "000000000004",  # the same second as 000000000001: the higher RRN first
        "000000000001",
        "000000000008",
        "000000000003",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"mid": OTHER_MID, "date_to": "2026-12-05"}, {"000000000002"}),
        ({"tid": OTHER_TID, "date_to": "2026-12-05"}, {"000000000002"}),
        ({"date_from": "2026-12-01", "date_to": "2026-12-01"}, {"000000000003"}),
        ({"rrn": "000000000001"}, {"000000000001", "000000000006"}),
        ({"rrn": "000000000007"}, {"000000000007"}),
        ({"last4": "9876"}, {"000000000004"}),
        ({"response_code": "51"}, {"000000000005"}),
        ({"kind": "void"}, {"000000000006"}),
        ({"kind": "sign_on"}, {"000000000008"}),
        ({"mid": MID, "response_code": "00", "kind": "sale", "last4": "0123"},
         {"000000000001", "000000000003"}),
    ],
)  # fmt: skip
def test_each_filter_narrows(journal: Database, raw: dict[str, Any], expected: set[str]) -> None:
    assert set(rrns(journal, **raw)) == expected


def test_an_rrn_alone_is_found_on_any_date_but_dates_still_apply(journal: Database) -> None:
    assert rrns(journal, rrn="000000000007") == ["000000000007"]
    assert rrns(journal, rrn="000000000007", date_from="2026-12-01", date_to="2026-12-04") == []


def test_missing_dates_are_filled_in() -> None:
    criteria, _ = parse()
    assert (criteria.date_from, criteria.date_to) == (TODAY - 6 * DAY, TODAY)
    criteria, _ = parse(date_to="2026-11-30")
    assert (criteria.date_from, criteria.date_to) == (dt.date(2026, 11, 24), dt.date(2026, 11, 30))
    # A start alone runs to today, but never past the longest range...
    criteria, _ = parse(date_from="2026-01-01")
    assert criteria.date_to == dt.date(2026, 1, 1) + (limits.TRANSACTION_SEARCH_DAYS_MAX - 1) * DAY
    criteria, _ = parse(date_from="2026-12-01")
    assert criteria.date_to == TODAY
    # ...and a start in the future is a one-day search, not an inverted range.
    criteria, _ = parse(date_from="2027-01-01")
    assert criteria.date_to == dt.date(2027, 1, 1)
    criteria, _ = parse(rrn="000000000001")
    assert (criteria.date_from, criteria.date_to) == (None, None)


def test_filters_are_normalised() -> None:
    criteria, _ = parse(mid=f" {MID} ", tid="", response_code="a0", kind=" ", last4=None)
    assert criteria.mid == MID
    assert criteria.tid is None
    assert criteria.response_code == "A0"
    assert criteria.kind is None
    assert criteria.last4 is None


# --- Paging --------------------------------------------------------------------------------


def test_pages(journal: Database) -> None:
    window = {"date_from": "2026-11-01", "date_to": "2026-12-31"}
    with journal.unit_of_work(read_only=True) as uow:
        criteria, page = parse(**window, page=1, page_size=3)
        first = service.search_transactions(uow.session, criteria, page)
        assert first.total == 8
        assert first.pages == 3
        assert (first.has_previous, first.has_next) == (False, True)
        assert len(first.rows) == 3
        criteria, page = parse(**window, page=3, page_size=3)
        last = service.search_transactions(uow.session, criteria, page)
        assert len(last.rows) == 2
        assert (last.has_previous, last.has_next) == (True, False)
        seen = [r.rrn for r in first.rows] + [r.rrn for r in last.rows]
        assert len(set(seen)) == 5
        criteria, page = parse(**window, page=9, page_size=3)
        beyond = service.search_transactions(uow.session, criteria, page)
        assert beyond.rows == []
        assert beyond.total == 8


def test_an_empty_result_is_one_page(database: Database) -> None:
    criteria, page = parse()
    with database.unit_of_work(read_only=True) as uow:
        result = service.search_transactions(uow.session, criteria, page)
    assert (result.total, result.pages, result.has_next, result.has_previous) == (
        0,
        1,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("raw", "field", "code"),
    [
        ({"page": 0}, "page", "greater_than_equal"),
        ({"page": limits.TRANSACTION_SEARCH_PAGES_MAX + 1}, "page", "less_than_equal"),
        ({"page_size": 0}, "page_size", "greater_than_equal"),
        ({"page_size": limits.PAGE_SIZE_MAX + 1}, "page_size", "less_than_equal"),
    ],
)
def test_paging_is_bounded(raw: dict[str, Any], field: str, code: str) -> None:
    assert field_errors(**raw) == {field: code}


def test_the_service_clamps_a_page_built_by_hand(database: Database) -> None:
    """Callers other than parse_search (the terminal page) cannot ask for more either."""
    with database.unit_of_work(read_only=True) as uow:
        result = service.search_transactions(
            uow.session, SearchFilter(), PageRequest(number=0, size=10_000)
        )
    assert result.page == PageRequest(1, limits.PAGE_SIZE_MAX)


# --- Validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("mid", "89834015411000", "mid_format"),
        ("mid", "8983401541100011", "mid_format"),
        ("mid", "89834015411000X", "mid_format"),
        ("tid", "1000001", "tid_format"),
        ("tid", "100000011", "tid_format"),
        ("tid", "1000-001", "tid_format"),
        ("rrn", "12345678901", "rrn_format"),
        ("rrn", "12345678901A", "rrn_format"),
        ("last4", "123", "last4_format"),
        ("last4", "12345", "last4_format"),
        ("last4", "12a4", "last4_format"),
        ("response_code", "5", "response_code_format"),
        ("response_code", "051", "response_code_format"),
        ("response_code", "5!", "response_code_format"),
        ("response_code", "A1", "response_code_unknown"),
        ("response_code", "02", "response_code_unknown"),
        ("date_from", "2026/12/01", "date_format"),
        ("date_from", "20261201", "date_format"),
        ("date_to", "2026-02-30", "date_format"),
        ("date_to", "yesterday", "date_format"),
        ("kind", "purchase", "kind_unknown"),
        ("tid", "1000000\n", "tid_format"),
    ],
)
def test_a_bad_filter_is_named(field: str, value: str, code: str) -> None:
    assert field_errors(**{field: value}) == {field: code}


def test_every_bad_field_is_named_at_once() -> None:
    errors = field_errors(mid="1", tid="2", rrn="3", last4="4", response_code="ZZ", page=0)
    assert errors == {
        "mid": "mid_format",
        "tid": "tid_format",
        "rrn": "rrn_format",
        "last4": "last4_format",
        "response_code": "response_code_unknown",
        "page": "greater_than_equal",
    }


def test_date_order_and_span() -> None:
    assert field_errors(date_from="2026-12-04", date_to="2026-12-03") == {
        "date_to": "date_range_inverted"
    }
    # A whole quarter (Q3: 31 + 31 + 30 days) is allowed; one more day is not.
    criteria, _ = parse(date_from="2026-07-01", date_to="2026-09-30")
    assert criteria.date_to == dt.date(2026, 9, 30)
    assert field_errors(date_from="2026-07-01", date_to="2026-10-01") == {
        "date_to": "date_range_too_long"
    }


def test_messages_carry_their_parameters() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(response_code="A7", date_from="2026-01-01", date_to="2026-12-31")
    by_field = {e.field: e for e in caught.value.errors}
    assert by_field["response_code"].params == {"code": "A7"}
    assert by_field["date_to"].params == {"days": "92"}


def test_every_kind_is_searchable() -> None:
    for kind in TxnKind:
        criteria, _ = parse(kind=kind.value)
        assert criteria.kind == kind.value


def test_every_code_the_gateway_sends_has_a_meaning() -> None:
    assert {rc.value for rc in Rc} <= set(RESPONSE_CODE_MEANINGS)
    assert len(RESPONSE_CODE_MEANINGS) == 41  # every row of spec §9
    assert response_code_meaning("51") == "Insufficient funds"
    assert response_code_meaning(None) is None
    assert response_code_meaning("ZZ") == "Not a response code of the specification"


# --- One transaction ---------------------------------------------------------------------


@pytest.fixture
def chain(database: Database) -> Database:
    """A sale, a partial refund of it, its void, and the reversal of that void; and an
    unrelated sale."""
    write(
        database,
        txn("000000000101", refunded_fen=234),
        txn(
            "000000000102",
            kind="refund",
            amount_fen=234,
            original_rrn="000000000101",
            received_at=MOMENT + dt.timedelta(minutes=5),
        ),
        txn(
            "000000000103",
            kind="void",
            original_rrn="000000000101",
            status="reversed",
            received_at=MOMENT + dt.timedelta(minutes=7),
        ),
        txn(
            "000000000104",
            kind="reversal",
            mti="0400",
            original_rrn="000000000103",
            reversal_reason="98",
            status="answered",
            received_at=MOMENT + dt.timedelta(minutes=8),
        ),
        txn("000000000105", received_at=MOMENT + dt.timedelta(minutes=6)),
    )
    return database


def test_detail_of_an_original(chain: Database) -> None:
    with chain.unit_of_work(read_only=True) as uow:
        detail = service.transaction_detail(uow.session, "000000000101")
        assert detail.original is None
        assert [r.rrn for r in detail.acting] == ["000000000102", "000000000103"]
        assert [(e.transaction.rrn, e.depth) for e in detail.timeline] == [
            ("000000000101", 0),
            ("000000000102", 1),
            ("000000000103", 1),
            ("000000000104", 2),
        ]


def test_detail_of_a_reversal_shows_the_whole_chain(chain: Database) -> None:
    with chain.unit_of_work(read_only=True) as uow:
        detail = service.transaction_detail(uow.session, "000000000104")
        assert detail.transaction.rrn == "000000000104"
        assert detail.original is not None
        assert detail.original.rrn == "000000000103"
        assert list(detail.acting) == []
        assert [e.transaction.rrn for e in detail.timeline] == [
            "000000000101",
            "000000000102",
            "000000000103",
            "000000000104",
        ]


def test_detail_of_a_lone_sale(chain: Database) -> None:
    with chain.unit_of_work(read_only=True) as uow:
        detail = service.transaction_detail(uow.session, "000000000105")
        assert [e.transaction.rrn for e in detail.timeline] == ["000000000105"]


def test_detail_whose_original_is_not_in_the_journal(database: Database) -> None:
    write(database, txn("000000000201", kind="refund", original_rrn="999999999999"))
    with database.unit_of_work(read_only=True) as uow:
        detail = service.transaction_detail(uow.session, "000000000201")
        assert detail.original is None
        assert [e.transaction.rrn for e in detail.timeline] == ["000000000201"]


def test_detail_of_nothing(database: Database) -> None:
    with database.unit_of_work(read_only=True) as uow:
        with pytest.raises(NotFound) as missing:
            service.transaction_detail(uow.session, "000000000999")
        assert missing.value.code == "transaction_not_found"
        with pytest.raises(ValidationFailed) as bad:
            service.transaction_detail(uow.session, "12345")
        assert [e.field for e in bad.value.errors] == ["rrn"]


# --- A terminal's activity -------------------------------------------------------------------


def test_terminal_activity(database: Database) -> None:
    write(
        database,
        *(
            txn(
                f"0000000003{n:02d}",
                received_at=MOMENT + n * dt.timedelta(minutes=1),
                batch_no="000002",
            )
            for n in range(25)
        ),
        txn("000000000399", tid=OTHER_TID, mid=OTHER_MID),
        txn("000000000398", kind="refund", amount_fen=100, batch_no="000002"),
        txn("000000000397", status="declined", response_code="51", batch_no="000002"),
        terminal_session(mac_failures=2, last_mac_failure_at=MOMENT),
        batch(
            "000001",
            status="closed",
            closed_at=MOMENT - dt.timedelta(hours=3),
            settled_at=MOMENT - dt.timedelta(hours=3),
            settlement_rrn="000000000300",
            terminal_debit_fen=5000,
            terminal_debit_count=2,
            terminal_credit_fen=0,
            terminal_credit_count=0,
            host_debit_fen=4000,
            host_debit_count=1,
            host_credit_fen=0,
            host_credit_count=0,
            result="2",
        ),
        batch("000002", opened_at=MOMENT - dt.timedelta(hours=3)),
    )
    with database.unit_of_work(read_only=True) as uow:
        activity = service.terminal_activity(uow.session, TID)
        # The rows are ORM objects: read them while the unit of work is open.
        assert len(activity.transactions) == limits.TERMINAL_RECENT_TRANSACTIONS
        assert activity.transactions[0].rrn == "000000000324"
        assert activity.transaction_total == 27
        assert {t.tid for t in activity.transactions} == {TID}

        session = activity.session
        assert session is not None
        assert session.signed_on
        assert (session.pik_kcv, session.mak_kcv, session.key_mode) == (
            "3F1A9C2B",
            "77D0E415",
            "003",
        )
        assert (session.mac_failures, session.mac_failures_before_lock) == (2, 5)
        # The view holds no key material, sealed or not: only the check values.
        assert "keys_sealed" not in {f.name for f in dataclasses.fields(session)}
        assert b"sealed" not in repr(session).encode()

        assert [b.batch_no for b in activity.batches] == ["000002", "000001"]
        open_batch = activity.open_batch
        assert open_batch is not None
        assert open_batch.batch_no == "000002"
        assert open_batch.result is None
        assert open_batch.terminal is None
        # The host's running count: approved sales are debits, approved refunds credits.
        assert open_batch.host == service.BatchTotals(25 * 1234, 25, 100, 1)
        settled = activity.batches[1]
        assert settled.result == "unbalanced"
        assert settled.terminal == service.BatchTotals(5000, 2, 0, 0)
        assert settled.host == service.BatchTotals(4000, 1, 0, 0)


def test_a_terminal_that_never_signed_on(database: Database) -> None:
    with database.unit_of_work(read_only=True) as uow:
        activity = service.terminal_activity(uow.session, TID)
        assert service.terminal_session(uow.session, TID) is None
    assert (activity.session, activity.open_batch, activity.batches) == (None, None, [])
    assert (list(activity.transactions), activity.transaction_total) == ([], 0)


def test_a_signed_off_session(database: Database) -> None:
    write(database, terminal_session(keys_sealed=None, signed_off_at=MOMENT))
    with database.unit_of_work(read_only=True) as uow:
        session = service.terminal_session(uow.session, TID)
    assert session is not None
    assert not session.signed_on
    assert session.signed_off_at == MOMENT


# --- Presentation helpers -------------------------------------------------------------------


def test_amounts_and_latencies() -> None:
    assert service.format_amount(1234) == "¥12.34"
    assert service.format_amount(123456, "156") == "¥1,234.56"
    assert service.format_amount(500, "840") == "5.00 840"
    assert service.format_amount(None) is None
    assert service.currency_alpha("156") == "CNY"
    assert service.milliseconds(12_345) == 12.3
    assert service.milliseconds(None) is None
