"""The transactions API for staff: search the gateway journal, read one transaction.

``GET /api/v1/transactions`` filters by MID, TID, business dates, RRN (the transaction and
what acts on it), the card's last four digits, response code and kind; a bad filter is a
422 naming the field. ``GET /api/v1/transactions/{rrn}`` gives the row, its original,
what acts on it and the whole chain in time order. Response-code meanings come in the
request's language (``Accept-Language``, ``?lang=``); times in Asia/Shanghai.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from poshub.core import limits
from poshub.core.clock import business_date, local_time
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.i18n import Translator
from poshub.gateway import service
from poshub.gateway.models import GatewayTransaction
from poshub.gateway.response_codes import response_code_meaning
from poshub.gateway.schemas import TransactionDetailOut, TransactionOut, TransactionPageOut
from poshub.staff.service import Principal
from poshub.web.deps import read_uow, staff, translator
from poshub.web.roles import TRANSACTION_READ

router = APIRouter(prefix="/api/v1", tags=["transactions"])

Read = Annotated[UnitOfWork, Depends(read_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*TRANSACTION_READ))]
"""Operations, risk officers, support agents, auditors and administrators (see
``web.roles.TRANSACTION_READ`` for why not reviewers or technicians)."""

FILTER_LENGTH_MAX = 32
"""Longer than any valid filter, so the service names the format; bounds what is read."""
Filter = Annotated[str | None, Query(max_length=FILTER_LENGTH_MAX)]


def _meaning(code: str | None, t: Translator) -> str | None:
    template = response_code_meaning(code)
    return t(template) if template is not None else None


def transaction_out(row: GatewayTransaction, t: Translator) -> TransactionOut:
    """A journal row as the API shows it (never the PAN token)."""
    return TransactionOut(
        rrn=row.rrn,
        tid=row.tid,
        mid=row.mid,
        kind=row.kind,
        status=row.status,
        amount_fen=row.amount_fen,
        amount=service.format_amount(row.amount_fen, row.currency),
        currency=service.currency_alpha(row.currency),
        pan_masked=row.pan_masked,
        pan_last4=row.pan_last4,
        response_code=row.response_code,
        response_meaning=_meaning(row.response_code, t),
        auth_code=row.auth_code,
        stan=row.stan,
        batch_no=row.batch_no,
        host_date=row.host_date,
        received_at=local_time(row.received_at),
        responded_at=local_time(row.responded_at) if row.responded_at else None,
        upstream=row.upstream,
        upstream_ms=service.milliseconds(row.upstream_us),
        total_ms=service.milliseconds(row.total_us),
        original_rrn=row.original_rrn,
        refunded_fen=row.refunded_fen or 0,
        refunded=service.format_amount(row.refunded_fen or 0, row.currency) or "",
        reversal_reason=row.reversal_reason,
        reversal_reason_meaning=_meaning(row.reversal_reason, t),
        qr_voucher=row.qr_voucher,
        wallet=row.wallet,
    )


@router.get("/transactions")
def search(
    uow: Read,
    principal: Reader,
    t: T,
    mid: Filter = None,
    tid: Filter = None,
    date_from: Filter = None,
    date_to: Filter = None,
    rrn: Filter = None,
    last4: Filter = None,
    response_code: Filter = None,
    kind: Filter = None,
    page: int = 1,
    page_size: int = limits.PAGE_SIZE_DEFAULT,
) -> TransactionPageOut:
    """Transactions matching every filter given, newest first.

    ``date_from``/``date_to`` are business dates (YYYY-MM-DD, Asia/Shanghai), both
    included, at most 92 days apart. Without dates the search covers the last 7 days
    (an RRN alone is looked up on any date); a start alone runs to today (92 days at
    most). The dates searched come back in the answer. ``rrn`` also finds what acts on
    that transaction; ``response_code`` is a code of spec §9; ``page_size`` is at most
    200."""
    criteria, paging = service.parse_search(
        service.SearchInput(
            mid=mid,
            tid=tid,
            date_from=date_from,
            date_to=date_to,
            rrn=rrn,
            last4=last4,
            response_code=response_code,
            kind=kind,
            page=page,
            page_size=page_size,
        ),
        today=business_date(utcnow()),
    )
    result = service.search_transactions(uow.session, criteria, paging)
    return TransactionPageOut(
        date_from=criteria.date_from,
        date_to=criteria.date_to,
        items=[transaction_out(row, t) for row in result.rows],
        total=result.total,
        page=result.page.number,
        page_size=result.page.size,
        pages=result.pages,
    )


@router.get("/transactions/{rrn}")
def transaction(rrn: str, uow: Read, principal: Reader, t: T) -> TransactionDetailOut:
    """One transaction, its original, what acts on it, and the chain in time order."""
    detail = service.transaction_detail(uow.session, rrn)
    return TransactionDetailOut(
        transaction=transaction_out(detail.transaction, t),
        original=transaction_out(detail.original, t) if detail.original else None,
        acting=[transaction_out(row, t) for row in detail.acting],
        timeline=[transaction_out(entry.transaction, t) for entry in detail.timeline],
    )
