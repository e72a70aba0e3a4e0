"""Staff pages for the gateway journal.

``/admin/transactions``: a search form (MID, TID, business dates, RRN, last four digits,
response code, kind) over a paginated table; the form is a GET, so a search is a link
that can be bookmarked or sent to a colleague (the terminal and merchant pages link to it
with their filter filled in). ``/admin/transactions/{rrn}``: one transaction with its
timeline, from the original to its voids, refunds and reversals.

The filters are checked by ``gateway.service.parse_search``, as the API checks them; a bad
one shows the form again with the reason beside the field (422).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from poshub.core import limits
from poshub.core.clock import business_date, local_time
from poshub.core.db import UnitOfWork, utcnow
from poshub.core.errors import ValidationFailed
from poshub.core.i18n import Translator
from poshub.gateway import service
from poshub.gateway.response_codes import RESPONSE_CODE_MEANINGS
from poshub.staff.service import Principal
from poshub.web.deps import read_uow, staff, translator
from poshub.web.errors import field_errors
from poshub.web.labels import TXN_KIND_LABELS
from poshub.web.roles import TRANSACTION_READ
from poshub.web.templating import render, templates

router = APIRouter(prefix="/admin", include_in_schema=False)

Read = Annotated[UnitOfWork, Depends(read_uow)]
T = Annotated[Translator, Depends(translator)]
Reader = Annotated[Principal, Depends(staff(*TRANSACTION_READ))]
Filter = Annotated[str, Query(max_length=32)]


def _local_seconds(value: dt.datetime | None) -> str:
    """Transactions are told apart by the second; the shared ``local`` filter stops at
    minutes."""
    return local_time(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


# The navigation (base.html), the merchant and terminal pages show their links to the
# transactions only to the roles that may open them.
templates.env.globals["TRANSACTION_READ"] = TRANSACTION_READ
templates.env.globals["format_amount"] = service.format_amount
templates.env.filters["local_seconds"] = _local_seconds


def _url(form: dict[str, str], page: int, page_size: int) -> str:
    query = {k: v for k, v in form.items() if v}
    if page != 1:
        query["page"] = str(page)
    if page_size != limits.PAGE_SIZE_DEFAULT:
        query["page_size"] = str(page_size)
    return "/admin/transactions" + (f"?{urlencode(query)}" if query else "")


@router.get("/transactions")
def transactions(
    request: Request,
    uow: Read,
    principal: Reader,
    t: T,
    mid: Filter = "",
    tid: Filter = "",
    date_from: Filter = "",
    date_to: Filter = "",
    rrn: Filter = "",
    last4: Filter = "",
    response_code: Filter = "",
    kind: Filter = "",
    page: int = 1,
    page_size: int = limits.PAGE_SIZE_DEFAULT,
) -> Response:
    form = {
        "mid": mid.strip(),
        "tid": tid.strip(),
        "date_from": date_from.strip(),
        "date_to": date_to.strip(),
        "rrn": rrn.strip(),
        "last4": last4.strip(),
        "response_code": response_code.strip().upper(),
        "kind": kind.strip(),
    }
    context: dict[str, Any] = {
        "form": form,
        "filtered": any(form.values()),
        "response_codes": list(RESPONSE_CODE_MEANINGS.items()),
        "kinds": list(TXN_KIND_LABELS),
        "days_max": limits.TRANSACTION_SEARCH_DAYS_MAX,
        "days_default": limits.TRANSACTION_SEARCH_DEFAULT_DAYS,
        "field_errors": {},
        "result": None,
    }
    try:
        criteria, paging = service.parse_search(
            service.SearchInput(
                mid=form["mid"],
                tid=form["tid"],
                date_from=form["date_from"],
                date_to=form["date_to"],
                rrn=form["rrn"],
                last4=form["last4"],
                response_code=form["response_code"],
                kind=form["kind"],
                page=page,
                page_size=page_size,
            ),
            today=business_date(utcnow()),
        )
    except ValidationFailed as exc:
        context["field_errors"] = {e["field"]: e["msg"] for e in field_errors(exc.errors, t)}
        return render(request, "admin/transactions.html", context, 422)
    # The form shows the dates searched, also when they were filled in.
    form["date_from"] = criteria.date_from.isoformat() if criteria.date_from else ""
    form["date_to"] = criteria.date_to.isoformat() if criteria.date_to else ""
    result = service.search_transactions(uow.session, criteria, paging)
    context["result"] = result
    context["previous_url"] = (
        _url(form, result.page.number - 1, result.page.size) if result.has_previous else None
    )
    context["next_url"] = (
        _url(form, result.page.number + 1, result.page.size) if result.has_next else None
    )
    return render(request, "admin/transactions.html", context)


@router.get("/transactions/{rrn}")
def transaction(rrn: str, request: Request, uow: Read, principal: Reader) -> Response:
    detail = service.transaction_detail(uow.session, rrn)
    return render(request, "admin/transaction.html", {"detail": detail, "txn": detail.transaction})
