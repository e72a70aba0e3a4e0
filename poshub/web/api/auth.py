"""Staff login and logout for API clients (the same server-side sessions as the pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from poshub.core.db import UnitOfWork
from poshub.core.errors import Unauthorized
from poshub.staff import service as staff_service
from poshub.staff.service import Principal
from poshub.web.deps import PUBLIC, client_ip, staff, write_uow
from poshub.web.roles import ANY_STAFF
from poshub.web.security import SESSION_COOKIE
from poshub.web.sessions import open_browser_session

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class MeOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    csrf_token: str
    """Send it as ``X-CSRF-Token`` on every state-changing request made with the session cookie."""


@router.post("/login", dependencies=[PUBLIC])
def login(
    body: LoginIn,
    request: Request,
    response: Response,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
) -> MeOut:
    """Staff login: a session cookie and the CSRF token for unsafe requests."""
    try:
        result = staff_service.login(
            uow.session,
            username=body.username,
            password=body.password,
            client_ip=client_ip(request),
        )
    except Unauthorized:
        uow.commit()  # keep the failure count and any lock-out
        raise
    uow.commit()
    csrf_token = open_browser_session(request, response, result.session_token)
    p = result.principal
    return MeOut(
        username=p.username,
        display_name=p.display_name,
        roles=sorted(p.roles),
        csrf_token=csrf_token,
    )


@router.post("/logout", status_code=204)
def logout(
    request: Request,
    response: Response,
    uow: Annotated[UnitOfWork, Depends(write_uow)],
    principal: Annotated[Principal, Depends(staff(*ANY_STAFF))],
) -> None:
    """End the caller's staff session."""
    token = request.cookies.get(SESSION_COOKIE, "")
    staff_service.logout(uow.session, token)
    uow.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")
