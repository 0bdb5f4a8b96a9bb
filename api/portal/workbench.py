"""The workbench (``/workbench``): what waits for a deputy, congress staff or a handling
office, with the forms that move a suggestion on.

Every form POSTs here (CSRF-checked) and calls the domain functions the JSON routes call
(``ledger.suggestions.transition``, ``read_private``, ``ledger.attachments.store``) in one unit
of work, exactly like ``api.deps.write_session``: committed before the answer, rolled back on
any refusal. A refusal re-renders the page with the service's message and its status (403,
404, 409, 422); nothing is stored. The service decides who may do what; the page only offers
the steps the published table (``core.workflow.allowed_next``) and the role allow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.portal.csrf import verify_csrf
from api.portal.errors import PageError
from api.portal.render import render
from api.portal.session import portal_principal
from api.state import AppState
from core.workflow import CHINESE_NAMES, ReplyCategory, SuggestionState, TrailFacts, allowed_next
from ledger import attachments, auth, suggestions
from ledger.auth import Principal, Role
from ledger.errors import CivicError, InvalidInput
from ledger.schemas import TransitionIn

router = APIRouter()
S = SuggestionState
T = TypeVar("T")

WORK_ROLES = frozenset({Role.DEPUTY, Role.STAFF, Role.OFFICE})
#: the steps each role may take (the service checks scope: district, lead office, …)
ROLE_STEPS: dict[Role, tuple[SuggestionState, ...]] = {
    Role.DEPUTY: (S.DEPUTY_ACCEPTED, S.ANSWERED_DIRECT, S.REJECTED, S.MERGED),
    Role.STAFF: (S.ASSIGNED, S.REJECTED, S.MERGED, S.CLOSED),
    Role.OFFICE: (S.IN_PROGRESS, S.ANSWERED, S.REASSIGN_REQUESTED, S.FOLLOW_UP),
}
#: the form fields of each step: (name, required)
STEP_FIELDS: dict[SuggestionState, tuple[tuple[str, bool], ...]] = {
    S.DEPUTY_ACCEPTED: (("reason", False),),
    S.REJECTED: (("reason", True),),
    S.ANSWERED_DIRECT: (("reason", True),),
    S.MERGED: (("merged_into", True), ("reason", False)),
    S.ASSIGNED: (("offices", True), ("due", False), ("reason", False)),
    S.REASSIGN_REQUESTED: (("reason", True),),
    S.IN_PROGRESS: (),
    S.ANSWERED: (("category", True), ("reply", True), ("reason", False)),
    S.CLOSED: (("reason", True),),
    S.FOLLOW_UP: (("reason", False),),
}
#: queues per role: (message key, states) — items in these states wait for that role
QUEUES: dict[Role, tuple[tuple[str, tuple[SuggestionState, ...]], ...]] = {
    Role.DEPUTY: (("staff.wb.queue.deputy_new", (S.SUBMITTED,)),),
    Role.STAFF: (
        ("staff.wb.queue.to_assign", (S.DEPUTY_ACCEPTED, S.REASSIGN_REQUESTED)),
        ("staff.wb.queue.answered", (S.ANSWERED,)),
    ),
    Role.OFFICE: (
        ("staff.wb.queue.office_new", (S.ASSIGNED, S.REHANDLING)),
        ("staff.wb.queue.office_progress", (S.IN_PROGRESS, S.REASSIGN_REQUESTED)),
        ("staff.wb.queue.office_follow", (S.CLOSED, S.FOLLOW_UP)),
    ),
}
PER_QUEUE = 100
_CODE = re.compile(r"SG-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
PRIVATE_FIELDS = ("contact", "text")


def login_redirect(request: Request) -> RedirectResponse:
    """To /login, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def refuse_role(principal: Principal, roles: frozenset[Role]) -> None:
    if principal.role not in roles:
        raise PageError(
            403,
            "staff.refused.title",
            "staff.refused.detail",
            role=principal.role.value,
            roles=", ".join(sorted(r.value for r in roles)),
        )


def signed_in_as(request: Request, roles: frozenset[Role]) -> Principal | Response:
    """The signed-in principal, if it holds one of ``roles``; a redirect to /login when
    nobody is signed in; a 403 page (PageError) for any other role."""
    principal = portal_principal(request)
    if principal is None:
        return login_redirect(request)
    refuse_role(principal, roles)
    return principal


def in_unit_of_work(state: AppState, work: Callable[[Session], T]) -> T:
    """``work`` in one transaction: committed when it returns, rolled back when it raises
    (what ``api.deps.write_session`` does for the JSON routes)."""
    with state.sessions.begin() as session:
        return work(session)


@dataclass
class Item:
    """A suggestion on the workbench: its public view, and what this principal may do."""

    view: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    may_read_private: bool = False
    lead: bool = False
    days_left: int | None = None


def _facts(view: dict[str, Any]) -> TrailFacts:
    category = view.get("reply_category")
    return TrailFacts(
        submitted_by_deputy=view.get("submitted_by") == Role.DEPUTY.value,
        reply_category=ReplyCategory(category) if category else None,
    )


def _deputy_in_scope(principal: Principal, view: dict[str, Any]) -> bool:
    return principal.role is Role.DEPUTY and (
        view.get("deputy") == principal.id
        or (principal.district is not None and principal.district == view.get("district"))
    )


def _handles(principal: Principal, view: dict[str, Any]) -> bool:
    """``ledger.suggestions.handles`` over the public view (the service checks again)."""
    if principal.role is Role.STAFF:
        return True
    if principal.role is Role.DEPUTY:
        return _deputy_in_scope(principal, view)
    if principal.role is Role.OFFICE:
        return principal.office in (view.get("offices") or [])
    return False


def make_item(principal: Principal, view: dict[str, Any], today: date) -> Item:
    state = SuggestionState(view["state"])
    lead = principal.role is Role.OFFICE and (view.get("offices") or [None])[0] == principal.office
    permitted = ROLE_STEPS.get(principal.role, ())
    if principal.role is Role.OFFICE and not lead:
        permitted = ()
    if principal.role is Role.DEPUTY and not _deputy_in_scope(principal, view):
        permitted = ()
    nxt = allowed_next(state, _facts(view))
    steps = [
        {
            "to": step.value,
            "name": CHINESE_NAMES[step],
            "fields": [{"name": n, "required": r} for n, r in STEP_FIELDS[step]],
        }
        for step in permitted
        if step in nxt
    ]
    due = view.get("due")
    days_left = (date.fromisoformat(due) - today).days if due else None
    return Item(view, steps, _handles(principal, view), lead, days_left)


def _queues(session: Session, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    today = now.date()
    queues: list[dict[str, Any]] = []
    for key, states in QUEUES.get(principal.role, ()):
        views: dict[str, dict[str, Any]] = {}
        for state in states:
            base = suggestions.ListFilter(state=state, per_page=PER_QUEUE)
            filters: list[suggestions.ListFilter] = []
            if principal.role is Role.DEPUTY:
                filters.append(replace(base, deputy=principal.id))
                if principal.district:
                    filters.append(replace(base, district=principal.district))
            elif principal.role is Role.OFFICE:
                filters.append(replace(base, office=principal.office))
            else:
                filters.append(base)
            for f in filters:
                for view in suggestions.list_suggestions(session, f, now)["items"]:
                    views.setdefault(view["tracking_code"], view)
        items = [make_item(principal, v, today) for v in views.values()]
        if principal.role is Role.OFFICE and key == "staff.wb.queue.office_follow":
            # closed replies are only work when a follow-up (B/C) is possible
            items = [i for i in items if i.steps or i.view["state"] == S.FOLLOW_UP.value]
        items.sort(key=lambda i: (not i.view["overdue"], i.view.get("due") or "9999"))
        queues.append({"key": key, "items": items})
    overdue_filter = suggestions.ListFilter(overdue=True, per_page=PER_QUEUE)
    if principal.role is Role.OFFICE:
        overdue_filter = suggestions.ListFilter(
            overdue=True, office=principal.office, per_page=PER_QUEUE
        )
    elif principal.role is Role.DEPUTY:
        overdue_filter = suggestions.ListFilter(
            overdue=True, district=principal.district, per_page=PER_QUEUE
        )
    shown = {i.view["tracking_code"] for q in queues for i in q["items"]}
    overdue = [
        make_item(principal, v, today)
        for v in suggestions.list_suggestions(session, overdue_filter, now)["items"]
        if v["tracking_code"] not in shown  # those above are highlighted where they are
    ]
    queues.append({"key": "staff.wb.queue.overdue", "items": overdue})
    return queues


def _page_context(
    session: Session, principal: Principal, code: str | None, now: datetime
) -> dict[str, Any]:
    found: Item | None = None
    if code:
        row = suggestions.get_row(session, code)
        found = make_item(principal, suggestions.public_view(row, now), now.date())
    return {
        "queues": _queues(session, principal, now),
        "found": found,
        "offices": sorted(auth.known_offices(session)),
        "categories": [c.value for c in ReplyCategory],
        "today": now.date().isoformat(),
    }


def render_workbench(
    request: Request,
    principal: Principal,
    *,
    status_code: int = 200,
    code: str | None = None,
    **extra: Any,
) -> Response:
    state: AppState = request.app.state.civic
    now = datetime.now(UTC)
    try:
        with state.read_sessions() as session:
            context = _page_context(session, principal, code, now)
    except CivicError as exc:  # an unknown tracking code in the lookup
        with state.read_sessions() as session:
            context = _page_context(session, principal, None, now)
        extra.setdefault("error", exc.message)
        status_code = exc.status_code
    return render(
        request,
        "workbench.html",
        status_code=status_code,
        principal=principal,
        code=code or "",
        **context,
        **extra,
    )


@router.get("/workbench", name="portal_workbench")
def workbench(request: Request) -> Response:
    principal = signed_in_as(request, WORK_ROLES)
    if isinstance(principal, Response):
        return principal
    code = (request.query_params.get("code") or "").strip().upper() or None
    if code is not None and not _CODE.fullmatch(code):
        return render_workbench(
            request,
            principal,
            status_code=422,
            error_key="staff.wb.bad_code",
        )
    moved = request.query_params.get("moved")
    notice = None
    if moved and _CODE.fullmatch(moved):
        to = request.query_params.get("to", "")
        notice = {
            "code": moved,
            "state": to,
            "state_name": CHINESE_NAMES.get(SuggestionState(to), to) if to in S.__members__ else to,
            "record": request.query_params.get("record", "")[:64],
        }
    return render_workbench(request, principal, code=code, notice=notice)


def transition_request(to: str, form: dict[str, str], reply_sha256: str | None) -> TransitionIn:
    """The form as the JSON body the API takes; ValidationError / InvalidInput when it is wrong.
    Only non-empty fields are passed, so the service names a missing or unused one."""
    body: dict[str, Any] = {"to": to}
    for name in ("reason", "merged_into", "due", "category"):
        value = form.get(name, "").strip()
        if value:
            body[name] = value
    offices = [o for o in re.split(r"[\s,，、]+", form.get("offices", "")) if o]
    if offices:
        body["offices"] = offices
    if reply_sha256:
        body["reply_sha256"] = reply_sha256
    if "merged_into" in body:
        body["merged_into"] = body["merged_into"].upper()
    return TransitionIn.model_validate(body)


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts)


@router.post(
    "/workbench/{tracking_code}/transition",
    name="portal_transition",
    dependencies=[Depends(verify_csrf)],
)
async def transition(request: Request, tracking_code: str) -> Response:
    principal = signed_in_as(request, WORK_ROLES)
    if isinstance(principal, Response):
        return principal
    state: AppState = request.app.state.civic
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    to = fields.get("to", "")
    upload = form.get("reply_file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""
    content_type = (
        upload.content_type or "" if isinstance(upload, UploadFile) and upload.filename else ""
    )

    def work(session: Session) -> tuple[str, str]:
        if not _CODE.fullmatch(tracking_code):
            raise InvalidInput(f"{tracking_code!r} is not a tracking code (SG-XXXX-XXXX-XXXX)")
        reply = fields.get("reply_sha256", "").strip().lower() or None
        if data:
            stored = attachments.store(
                session, state.settings.attachments_dir, data, content_type, principal.id
            )
            reply = stored.sha256
        req = transition_request(to, fields, reply)
        sealed, row = suggestions.transition(
            session, tracking_code, req, principal=principal, policy=state.policy
        )
        return sealed.record_hash, row.state

    try:
        record_hash, new_state = await run_in_threadpool(in_unit_of_work, state, work)
    except ValidationError as exc:
        return await run_in_threadpool(
            _refused, request, principal, tracking_code, to, 422, describe_validation(exc)
        )
    except CivicError as exc:
        return await run_in_threadpool(
            _refused, request, principal, tracking_code, to, exc.status_code, exc.message
        )
    query = urlencode({"moved": tracking_code, "to": new_state, "record": record_hash})
    return RedirectResponse(f"/workbench?{query}", status_code=303)


def _refused(
    request: Request, principal: Principal, code: str, to: str, status: int, message: str
) -> Response:
    known = _CODE.fullmatch(code) is not None
    return render_workbench(
        request,
        principal,
        status_code=status,
        code=code if known and status != 404 else None,
        error=message,
        error_code=code,
        error_to=to,
    )


@router.post(
    "/workbench/{tracking_code}/private",
    name="portal_read_private",
    dependencies=[Depends(verify_csrf)],
)
async def read_private(request: Request, tracking_code: str) -> Response:
    """Contact data (or a confidential text) for those handling the suggestion, with a reason;
    the read is a ``pii.read`` record first, as in ``GET /api/v1/suggestions/{code}/contact``."""
    principal = signed_in_as(request, WORK_ROLES)
    if isinstance(principal, Response):
        return principal
    state: AppState = request.app.state.civic
    form = await request.form()
    which = str(form.get("field", "contact"))
    reason = str(form.get("reason", ""))

    def work(session: Session) -> dict[str, Any]:
        if not _CODE.fullmatch(tracking_code):
            raise InvalidInput(f"{tracking_code!r} is not a tracking code")
        if which not in PRIVATE_FIELDS:
            raise InvalidInput(f"field must be one of {', '.join(PRIVATE_FIELDS)}")
        return suggestions.read_private(
            session,
            tracking_code,
            which,
            principal=principal,
            reason=reason,
            vault=state.vault,
        )

    try:
        opened = await run_in_threadpool(in_unit_of_work, state, work)
    except CivicError as exc:
        return await run_in_threadpool(
            _refused, request, principal, tracking_code, "", exc.status_code, exc.message
        )
    private = {
        "code": tracking_code,
        "field": which,
        "value": opened[which],
        "title": opened.get("title"),  # a confidential suggestion's hidden title and files
        "attachments": opened.get("attachments"),
        "reason": reason,
    }
    return await run_in_threadpool(
        lambda: render_workbench(request, principal, code=tracking_code, private=private)
    )
