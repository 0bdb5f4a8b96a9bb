"""政策沙盘 (``/simulations``, ``/simulations/{id}``): budget simulations and 票决.

A deputy votes in the browser: ``static/sign.js`` reads their key file (PKCS #8 PEM, as
``civic-ledger deputy keygen`` writes it), builds the RFC 8785 bytes of ``{simulation, voter,
choices, nonce}`` (``core.voting.ballots.ballot_message``), signs them with WebCrypto Ed25519 and
POSTs the signed ballot to ``POST /api/v1/simulations/{id}/ballots``. The key never leaves the
browser; the signature is the only authority the server takes. The page also shows the
``civic-ledger vote`` command for doing the same from a terminal.

Staff (and admins) open, close and tally from the page: CSRF-checked POSTs that call
``voting.service`` in one unit of work, like the JSON routes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.portal.csrf import verify_csrf
from api.portal.errors import PageError
from api.portal.i18n import language_of, messages
from api.portal.render import render
from api.portal.session import portal_principal
from api.portal.workbench import in_unit_of_work, signed_in_as
from api.state import AppState
from core.records import SealedRecord
from ledger.auth import Principal, Role
from ledger.errors import CivicError
from voting import service

router = APIRouter()

_SIM = re.compile(r"SIM-[0-9A-HJKMNP-TV-Z]{8}")
MANAGERS = frozenset({Role.STAFF, Role.ADMIN})
BAR_WIDTH = 600
ACTIONS: dict[str, Callable[..., SealedRecord]] = {
    "open": service.open_simulation,
    "close": service.close,
    "tally": service.tally_simulation,
}
#: the action a staff member may take in each state
NEXT_ACTION = {"draft": "open", "open": "close", "closed": "tally"}


def _sim_id(simulation_id: str) -> str:
    if not _SIM.fullmatch(simulation_id):
        raise PageError(404, "staff.sim.not_found.title", "staff.sim.not_found.detail")
    return simulation_id


def api_base(request: Request) -> str:
    """The API as the public reaches it (what ``civic-ledger vote --api`` takes): the
    configured public URL, never the Host header."""
    state: AppState = request.app.state.civic
    return state.settings.resolved_public_url


def example_choices(view: dict[str, Any]) -> str:
    """A ``--choices`` argument of the right shape for this ballot type."""
    ids = [p["id"] for p in view["projects"]]
    kind = view["ballot_type"]
    if kind == "yes_no":
        words = ("yes", "no", "abstain")
        return ",".join(f"{p}={words[i % 3]}" for i, p in enumerate(ids))
    if kind == "cumulative":
        return ",".join(f"{p}=1" for p in ids[:2])
    if kind == "ordinal":
        return ",".join(reversed(ids[: view.get("max_choices") or 3]))
    return ",".join(ids[: max(1, min(2, view.get("max_choices") or 2))])


def project_rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Projects with their cost bar (relative to the budget, or to the dearest project)."""
    result = view.get("result") or {}
    outcome = result.get("outcome") or {}
    chosen = set(outcome.get("selected") or outcome.get("adopted") or [])
    counts = result.get("counts") or {}
    scale = max([view.get("budget") or 0] + [p["cost"] for p in view["projects"]]) or 1
    rows = []
    for project in view["projects"]:
        count = counts.get(project["id"])
        rows.append(
            {
                **project,
                "bar": max(1, round(project["cost"] / scale * BAR_WIDTH)),
                "selected": project["id"] in chosen,
                "count": count,
                "share": None
                if not view.get("budget")
                else f"{project['cost'] / view['budget'] * 100:.1f}%",
            }
        )
    return rows


def budget_bar(view: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """After the tally: the selected projects side by side against the budget."""
    budget = view.get("budget")
    if not budget:
        return None
    scale = max(budget, sum(r["cost"] for r in rows if r["selected"])) or 1
    x = 0
    segments = []
    for index, row in enumerate(r for r in rows if r["selected"]):
        width = round(row["cost"] / scale * BAR_WIDTH)
        segments.append({"id": row["id"], "x": x, "width": width, "shade": index % 4})
        x += width
    return {
        "segments": segments,
        "used": sum(r["cost"] for r in rows if r["selected"]),
        "budget": budget,
        "budget_x": round(budget / scale * BAR_WIDTH),
        "width": BAR_WIDTH,
    }


@router.get("/simulations", name="portal_simulations")
def simulations(request: Request) -> Response:
    state: AppState = request.app.state.civic
    with state.read_sessions() as session:
        views = [service.public_view(session, row) for row in service.all_simulations(session)]
    return render(request, "simulations.html", simulations=views)


def simulation_context(
    request: Request, session: Session, simulation_id: str, principal: Principal | None
) -> dict[str, Any]:
    row = service.get(session, simulation_id)
    view = service.public_view(session, row)
    rows = project_rows(view)
    voter = principal.id if principal is not None and principal.role is Role.DEPUTY else None
    mine = []
    if voter is not None:
        listing = service.ballots_view(session, row, principal)
        mine = [b for b in listing["ballots"] if b.get("voter") == voter]
    may_vote = voter is not None and voter in view["electorate"] and view["state"] == "open"
    result = view.get("result") or {}
    state: AppState = request.app.state.civic
    return {
        "sim": view,
        "rows": rows,
        "bar": budget_bar(view, rows) if view["state"] == "tallied" else None,
        "result": result,
        "outcome": result.get("outcome") or {},
        "yes_no": view["ballot_type"] == "yes_no",
        "voter": voter,
        "may_vote": may_vote,
        "in_electorate": voter is not None and voter in view["electorate"],
        "my_ballots": mine,
        "vote_command": (
            f"civic-ledger vote {view['id']} --key deputy.key --voter {voter or 'deputy-…'} "
            f"--api {api_base(request)} --choices {example_choices(view)}"
        ),
        "verify_command": (
            f"civic-verify tally {view['id']} --api {api_base(request)} "
            f"--rpc {state.settings.resolved_chain_rpc}"
            + (f" --my-ballot {mine[-1]['record_hash']}" if mine else "")
        ),
        "ballot_url": f"/api/v1/simulations/{view['id']}/ballots",
        "manage": principal is not None and principal.role in MANAGERS,
        "next_action": NEXT_ACTION.get(view["state"]),
        "labels": verdict_labels(request),
    }


def verdict_labels(request: Request) -> dict[str, str]:
    """The verdict words ``portal.js`` writes on the tally's badge, in the page's language."""
    lang = language_of(request)
    return {k: v[lang] for k, v in messages().items() if k.startswith("verdict.")}


def render_simulation(
    request: Request, simulation_id: str, *, status_code: int = 200, **extra: Any
) -> Response:
    state: AppState = request.app.state.civic
    principal = portal_principal(request)
    try:
        with state.read_sessions() as session:
            context = simulation_context(request, session, simulation_id, principal)
    except service.SimulationNotFound:
        raise PageError(404, "staff.sim.not_found.title", "staff.sim.not_found.detail") from None
    return render(request, "simulation.html", status_code=status_code, **context, **extra)


@router.get("/simulations/{simulation_id}", name="portal_simulation")
def simulation(request: Request, simulation_id: str) -> Response:
    _sim_id(simulation_id)
    done = request.query_params.get("done")
    notice = None
    if done in ACTIONS:
        notice = {"action": done, "record": request.query_params.get("record", "")[:64]}
    return render_simulation(request, simulation_id, notice=notice)


@router.post(
    "/simulations/{simulation_id}/{action}",
    name="portal_simulation_action",
    dependencies=[Depends(verify_csrf)],
)
async def simulation_action(request: Request, simulation_id: str, action: str) -> Response:
    """Open, close or tally: staff (or admins) only; refusals re-render with the reason."""
    _sim_id(simulation_id)
    principal = signed_in_as(request, MANAGERS)
    if isinstance(principal, Response):
        return principal
    if action not in ACTIONS:
        raise PageError(404, "staff.sim.not_found.title", "staff.sim.no_action")
    state: AppState = request.app.state.civic

    def work(session: Session) -> str:
        sealed = ACTIONS[action](session, simulation_id, principal=principal)
        return sealed.record_hash

    try:
        record_hash = await run_in_threadpool(in_unit_of_work, state, work)
    except CivicError as exc:
        return await run_in_threadpool(
            partial(
                render_simulation,
                request,
                simulation_id,
                status_code=exc.status_code,
                error=exc.message,
            )
        )
    query = urlencode({"done": action, "record": record_hash})
    return RedirectResponse(f"/simulations/{simulation_id}?{query}", status_code=303)
