"""Citizen pages: 提交建议 (``/``), 建议追踪 (``/track/{code}``), 核验 (``/verify``).

The handlers call the very functions the JSON API calls (``ledger.suggestions``,
``ledger.service.receipt``, ``verifier.receipt``) in the request's unit of work; they never
call the API over HTTP. A refused form is shown again with its message and a 4xx status, and
changes nothing.

The submit form takes photos (``photos``: a phone offers its camera), stored as the API stores
uploads (``ledger.attachments.store``: checked, stripped of EXIF and GPS data, encoded again)
in the submission's transaction and cited by it. The track page shows a suggestion's photos
and reply document to whom may read them (``api.portal.attachments``), the citizen after
entering their token in its form (``POST /track/{code}/files``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from api.deps import ReadSessionDep, SessionDep, StateDep, client_address
from api.portal.attachments import (
    citizen_of,
    clear_citizen_cookie,
    set_citizen_cookie,
    shown_files,
    track_visitors,
)
from api.portal.csrf import verify_csrf
from api.portal.errors import PageError
from api.portal.i18n import language_of, messages
from api.portal.proof import PathStep, path_steps
from api.portal.render import render
from api.portal.session import portal_principal
from api.state import made_once
from core.checkpoint import open_checkpoint
from core.records import RecordType, is_hex64
from core.verdicts import ReceiptVerification
from core.workflow import EvaluationLevel, SuggestionState, evaluation_outcome
from ledger import attachments, auth, ratelimit, service, suggestions
from ledger import repository as repo
from ledger.auth import Forbidden, Principal, Role, Unauthenticated
from ledger.errors import CivicError, NotFound
from ledger.schemas import SuggestionIn, TransitionIn
from verifier.chain import CachingChainReader, ChainReader, Web3ChainReader, log_id
from verifier.errors import VerificationError
from verifier.receipt import receipt_from_json, verify_receipt_json
from voting import service as voting_service

router = APIRouter()

TRACKING_CODE = re.compile(
    r"^SG-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"
)
MAX_RECEIPT_BYTES = 64 * 1024
#: Categories offered on the form: the stored value (Chinese, as the record keeps it) and the
#: message key of its label.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("城乡建设", "category.urban"),
    ("交通出行", "category.transport"),
    ("教育", "category.education"),
    ("医疗卫生", "category.health"),
    ("社会保障", "category.welfare"),
    ("生态环境", "category.environment"),
    ("公共安全", "category.safety"),
    ("经济发展", "category.economy"),
    ("文化体育", "category.culture"),
    ("其他", "category.other"),
)
SUBMIT_FIELDS = ("title", "text", "category", "district", "contact_name", "contact_phone")
#: The most photos one submission takes (the schema's ``attachments``, ``max_length``).
MAX_PHOTOS = 10


async def form_data(request: Request) -> FormData:
    """The posted form (Starlette caches it, so ``verify_csrf`` and the route share one read)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _labels(request: Request) -> dict[str, str]:
    """The words portal.js puts on badges, in the page's language."""
    lang = language_of(request)
    wanted = ("verdict.", "copy.", "verify.fetch_failed", "receipt.download", "browser.")
    return {k: v[lang] for k, v in messages().items() if k.startswith(wanted)}


# -- 提交建议 ---------------------------------------------------------------------------------


@dataclass
class FieldErrors:
    """Errors of a refused form: per field (message key and its arguments) and in general."""

    fields: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    general: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str, key: str, **fmt: Any) -> None:
        self.fields.setdefault(name, (key, fmt))


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts[:1] == ["contact"] and len(parts) > 1:
        return f"contact_{parts[1]}"
    return parts[0] if parts else "form"


def _explain(error: Any) -> tuple[str, dict[str, Any]]:
    kind, msg = error.get("type", ""), str(error.get("msg", ""))
    ctx = error.get("ctx") or {}
    if kind in ("missing", "string_too_short") or "empty" in msg:
        return "form.error.required", {}
    if kind in ("string_too_long", "too_long"):
        return "form.error.too_long", {"max": ctx.get("max_length", "?")}
    if "single line" in msg:
        return "form.error.one_line", {}
    if kind == "string_pattern_mismatch":
        return "form.error.pattern", {}
    return "form.error.invalid", {"detail": msg}


def _parse_submission(form: FormData) -> tuple[SuggestionIn | None, FieldErrors]:
    errors = FieldErrors()
    name, phone = _text(form, "contact_name").strip(), _text(form, "contact_phone").strip()
    data: dict[str, Any] = {
        "title": _text(form, "title"),
        "text": _text(form, "text"),
        "category": _text(form, "category"),
        "district": _text(form, "district"),
        "confidential": _text(form, "confidential") == "1",
        "title_public": _text(form, "title_public") == "1",
    }
    if name or phone:
        data["contact"] = {"name": name, "phone": phone}
    try:
        return SuggestionIn.model_validate(data), errors
    except ValidationError as exc:
        for error in exc.errors():
            key, fmt = _explain(error)
            errors.add(_field_name(tuple(error.get("loc", ()))), key, **fmt)
        return None, errors


def _submit_form(
    request: Request,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
) -> HTMLResponse:
    return render(
        request,
        "submit.html",
        status_code=status_code,
        values=values or {},
        errors=errors or FieldErrors(),
        categories=CATEGORIES,
    )


@router.get("/", response_class=HTMLResponse, name="portal_submit")
def submit_page(request: Request) -> HTMLResponse:
    return _submit_form(request)


def _store_photos(
    session: Any,
    state: Any,
    photos: list[UploadFile],
    principal: Principal | None,
    errors: FieldErrors,
) -> tuple[list[str], int]:
    """Store the form's photos as ``POST /api/v1/attachments`` would (each checked, stripped
    of EXIF and GPS data and encoded again, ``ledger.attachments.store``), within the
    submission's transaction: their hashes, or the status of the first refusal (0 when none),
    whose message is added to ``errors``. The size limit of each is the API's:
    CIVIC_ANONYMOUS_ATTACHMENT_BYTES without an account, CIVIC_MAX_ATTACHMENT_BYTES with."""
    settings = state.settings
    limit = settings.max_attachment_bytes if principal else settings.anonymous_attachment_bytes
    uploader = principal.id if principal else "anonymous"
    hashes: list[str] = []
    for photo in photos:
        name = (photo.filename or "")[:80]
        media_type = (photo.content_type or "").split(";", 1)[0].strip().lower()
        if media_type not in attachments.STRIPPED_TYPES:
            errors.add("photos", "submit.photos.not_image", file=name)
            return hashes, 415
        photo.file.seek(0)
        content = photo.file.read(limit + 1)
        if len(content) > limit:
            errors.add("photos", "submit.photos.too_big", file=name, max=limit // (1024 * 1024))
            return hashes, 413
        try:
            stored = attachments.store(
                session, settings.attachments_dir, content, photo.content_type or "", uploader
            )
        except CivicError as exc:
            errors.add("photos", "submit.photos.refused", file=name, detail=exc.message)
            return hashes, exc.status_code
        if stored.sha256 not in hashes:
            hashes.append(stored.sha256)
    return hashes, 0


def _qr_data_uri(url: str) -> str:
    return str(segno.make(url, error="m").png_data_uri(scale=5, border=2))


@router.post(
    "/", response_class=HTMLResponse, dependencies=[Depends(verify_csrf)], name="portal_submit_post"
)
def submit(request: Request, form: FormDep, session: SessionDep, state: StateDep) -> HTMLResponse:
    values = {name: _text(form, name) for name in SUBMIT_FIELDS}
    for box in ("confidential", "title_public"):
        values[box] = "1" if _text(form, box) == "1" else ""
    principal = portal_principal(request, session)
    if principal is not None and principal.role is not Role.DEPUTY:
        errors = FieldErrors(general=[("submit.error.role", {"role": principal.role.value})])
        return _submit_form(request, 403, values, errors)
    data, errors = _parse_submission(form)
    photos = [
        f for f in form.getlist("photos") if isinstance(f, UploadFile) and (f.filename or f.size)
    ]
    if len(photos) > MAX_PHOTOS:
        errors.add("photos", "submit.photos.too_many", max=MAX_PHOTOS)
    if data is None or errors:
        return _submit_form(request, 422, values, errors)
    if principal is None:  # anonymous submissions are rate limited, counted with the API's
        limits = [ratelimit.submission_limit(state.settings)]
        now = datetime.now(UTC)
        wait = ratelimit.hit(session, client_address(request), limits, now)
        for _ in photos:  # each photo is an anonymous upload (CIVIC_UPLOAD_RATE an hour)
            if wait:
                break
            wait = ratelimit.hit(
                session, client_address(request), [ratelimit.upload_limit(state.settings)], now
            )
        if wait:
            session.rollback()
            errors.general.append(("submit.error.rate", {"per_minute": limits[0].limit}))
            response = _submit_form(request, 429, values, errors)
            response.headers["Retry-After"] = ratelimit.retry_after(wait)
            return response
    if photos:
        hashes, refused = _store_photos(session, state, photos, principal, errors)
        if refused:
            session.rollback()
            return _submit_form(request, refused, values, errors)
        data = data.model_copy(update={"attachments": hashes})
    try:
        submitted = suggestions.submit(session, data, principal=principal, vault=state.vault)
    except CivicError as exc:
        session.rollback()
        errors.general.append(("form.error.invalid", {"detail": exc.message}))
        return _submit_form(request, exc.status_code, values, errors)
    code = submitted.tracking_code
    # Built from the configured public URL, never from the Host header (it is in the QR code).
    track_path = request.url_for("portal_track", tracking_code=code).path
    track_url = state.settings.resolved_public_url + track_path
    record_hash = submitted.sealed.record_hash
    return render(
        request,
        "submitted.html",
        status_code=201,
        tracking_code=code,
        citizen_token=submitted.citizen_token,
        record_hash=record_hash,
        track_url=track_url,
        qr=_qr_data_uri(track_url),
        receipt_api=str(request.url_for("record_receipt", record_hash=record_hash).path),
        download_url=f"/track/{code}/receipt/{record_hash}.json",
        labels=_labels(request),
    )


# -- 建议追踪 ---------------------------------------------------------------------------------


def _check_code(tracking_code: str) -> str:
    code = tracking_code.strip().upper()
    if not TRACKING_CODE.match(code):
        raise PageError(404, "track.not_found.title", "track.bad_code", code=tracking_code[:40])
    return code


@router.get("/track", response_class=HTMLResponse, name="portal_track_lookup")
def track_lookup(request: Request, code: str = "") -> Response:
    """The "track a suggestion" box: ``/track?code=…`` → ``/track/{code}``."""
    checked = _check_code(code)
    return RedirectResponse(f"/track/{checked}", status_code=303)


def _describe(record: dict[str, Any] | None) -> dict[str, Any]:
    """A trail record in the shape track.html shows: what happened, and the details."""
    if record is None:
        return {"kind": "redacted"}
    body = record.get("body") or {}
    actor = record.get("actor") or {}
    entry: dict[str, Any] = {
        "kind": record.get("type"),
        "seq": record.get("seq"),
        "at": record.get("at"),
        "actor_role": actor.get("role"),
        "actor_id": actor.get("id") if actor.get("role") != "citizen" else None,
        "body": body,
    }
    if record.get("type") == RecordType.SUGGESTION_SUBMITTED:
        entry["to"] = SuggestionState.SUBMITTED.value
    elif record.get("type") == RecordType.SUGGESTION_TRANSITION:
        entry["from"], entry["to"] = body.get("from"), body.get("to")
    return entry


def _track_page(
    request: Request,
    session: Any,
    code: str,
    *,
    status_code: int = 200,
    eval_values: dict[str, str] | None = None,
    eval_errors: FieldErrors | None = None,
    files_errors: FieldErrors | None = None,
) -> HTMLResponse:
    try:
        row = suggestions.get_row(session, code)
    except NotFound:
        raise PageError(404, "track.not_found.title", "track.not_found", code=code) from None
    view = suggestions.public_view(row, datetime.now(UTC))
    trail = suggestions.trail(session, code)
    cited: list[str] = []
    replies: set[str] = set()
    hidden_files = False
    for item in trail["records"]:
        body = (item["record"] or {}).get("body") or {}
        for sha in body.get("attachments") or []:
            if isinstance(sha, str):
                cited.append(sha)
        if isinstance(body.get("reply_sha256"), str):
            cited.append(body["reply_sha256"])
            replies.add(body["reply_sha256"])
        hidden_files = hidden_files or "attachments_commitment" in body
    visitors = track_visitors(request, session, code)
    files = shown_files(session, code, list(dict.fromkeys(cited)), replies, visitors)
    citizen = any(v.role is Role.CITIZEN for v in visitors)
    entries = []
    for position, item in enumerate(trail["records"]):
        entry = _describe(item["record"])
        entry.update(
            index=position,
            record_hash=item["record_hash"],
            status=item["status"],
            receipt_api=f"/api/v1/records/{item['record_hash']}/receipt",
            download_url=f"/track/{code}/receipt/{item['record_hash']}.json",
        )
        entries.append(entry)
    return render(
        request,
        "track.html",
        status_code=status_code,
        view=view,
        entries=entries,
        can_evaluate=row.state == SuggestionState.ANSWERED.value,
        levels=[level.value for level in EvaluationLevel],
        eval_values=eval_values or {},
        eval_errors=eval_errors or FieldErrors(),
        evaluated=request.query_params.get("evaluated") == "1",
        labels=_labels(request),
        files=files,
        reply_files={f.sha256: f for f in files if f.reply},
        has_files=bool(cited) or hidden_files,
        citizen=citizen,
        files_errors=files_errors or FieldErrors(),
    )


@router.get("/track/{tracking_code}", response_class=HTMLResponse, name="portal_track")
def track_page(request: Request, tracking_code: str, session: ReadSessionDep) -> HTMLResponse:
    return _track_page(request, session, _check_code(tracking_code))


@router.post(
    "/track/{tracking_code}/evaluate",
    response_class=HTMLResponse,
    dependencies=[Depends(verify_csrf)],
    name="portal_evaluate",
)
def evaluate(
    request: Request, tracking_code: str, form: FormDep, session: SessionDep, state: StateDep
) -> Response:
    """评价: the holder of the citizen token (or the submitting deputy's token) evaluates the reply."""
    code = _check_code(tracking_code)
    token = _text(form, "token").strip()
    level_text = _text(form, "level")
    reason = _text(form, "reason").strip()
    values = {"level": level_text, "reason": reason}
    errors = FieldErrors()
    if not token:
        errors.add("token", "form.error.required")
    if level_text not in {level.value for level in EvaluationLevel}:
        errors.add("level", "evaluate.error.level")
    principal: Principal | None = None
    if token:
        try:
            principal = auth.authenticate(session, token)
        except Unauthenticated:
            errors.add("token", "evaluate.error.token")
    if errors or principal is None:
        return _track_page(
            request, session, code, status_code=422, eval_values=values, eval_errors=errors
        )
    level = EvaluationLevel(level_text)
    try:
        request_body = TransitionIn.model_validate(
            {"to": evaluation_outcome(level), "level": level, "reason": reason or None}
        )
        suggestions.transition(
            session, code, request_body, principal=principal, policy=state.policy
        )
    except ValidationError as exc:
        for error in exc.errors():
            key, fmt = _explain(error)
            errors.add(_field_name(tuple(error.get("loc", ()))), key, **fmt)
        return _track_page(
            request, session, code, status_code=422, eval_values=values, eval_errors=errors
        )
    except CivicError as exc:
        session.rollback()
        if isinstance(exc, Forbidden):
            errors.add("token", "evaluate.error.not_yours")
        else:
            errors.general.append(("form.error.invalid", {"detail": exc.message}))
        return _track_page(
            request,
            session,
            code,
            status_code=exc.status_code,
            eval_values=values,
            eval_errors=errors,
        )
    return RedirectResponse(f"/track/{code}?evaluated=1", status_code=303)


@router.post(
    "/track/{tracking_code}/files",
    response_class=HTMLResponse,
    dependencies=[Depends(verify_csrf)],
    name="portal_track_files",
)
def show_files(
    request: Request, tracking_code: str, form: FormDep, session: ReadSessionDep, state: StateDep
) -> Response:
    """ "Show my photos and the reply": the citizen token of this suggestion, kept in this
    browser for this suggestion's pages only (``api.portal.attachments``); ``forget=1``
    removes it."""
    code = _check_code(tracking_code)
    if _text(form, "forget") == "1":
        response: Response = RedirectResponse(f"/track/{code}", status_code=303)
        clear_citizen_cookie(response, code)
        return response
    token = _text(form, "token").strip()
    errors = FieldErrors()
    if not token:
        errors.add("files_token", "form.error.required")
    elif citizen_of(session, token, code) is None:
        errors.add("files_token", "track.files.bad_token")
    if errors:
        return _track_page(request, session, code, status_code=422, files_errors=errors)
    response = RedirectResponse(f"/track/{code}#files", status_code=303)
    set_citizen_cookie(response, code, token, state.settings)
    return response


@router.get("/track/{tracking_code}/receipt/{record_hash}.json", name="portal_receipt_download")
def download_receipt(
    request: Request, tracking_code: str, record_hash: str, session: ReadSessionDep
) -> Response:
    """A trail record's receipt as a file; a page saying "pending" until it is anchored."""
    code = _check_code(tracking_code)
    if not is_hex64(record_hash):
        raise PageError(404, "receipt.not_found.title", "receipt.not_found", code=code)
    try:
        receipt = service.receipt(session, record_hash)
        row = repo.record_by_hash(session, bytes.fromhex(record_hash))
    except NotFound:
        raise PageError(404, "receipt.not_found.title", "receipt.not_found", code=code) from None
    if row is None or row.log != suggestions.LOG or row.subject != code:
        raise PageError(404, "receipt.not_found.title", "receipt.not_found", code=code)
    if isinstance(receipt, service.ReceiptPending):
        return render(
            request,
            "error.html",
            status_code=202,
            title_key="receipt.pending.title",
            detail_key="receipt.pending",
            detail_fmt={},
        )
    text = json.dumps(receipt, ensure_ascii=False, indent=2) + "\n"
    filename = f"receipt-{code}-{row.seq}.json"
    return Response(
        text.encode(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- 核验 -------------------------------------------------------------------------------------


def chain_reader(request: Request) -> ChainReader:
    """One cached chain reader for the app (anchored roots never change)."""
    return made_once(
        request.app.state,
        "portal_chain_reader",
        lambda civic: CachingChainReader(Web3ChainReader(civic.settings.resolved_chain_rpc, 5.0)),
    )


@dataclass
class Explained:
    """What the verify page shows beside the verdict: facts read from the receipt and the
    chain, each recomputed or asked independently of the verdict's own checks."""

    record: dict[str, Any] | None = None
    leaf_hash: str | None = None
    proof: dict[str, Any] | None = None
    steps: list[PathStep] | None = None
    anchor: dict[str, Any] | None = None
    on_chain: dict[str, Any] | None = None
    cosigned: Cosigned | None = None


@dataclass(frozen=True)
class Cosigned:
    """A version 2 receipt's checkpoint as this service opens it (PROTOCOL §9, §11): the
    log's key id and each configured witness whose cosignature verifies, with its time (UTC);
    ``problem`` when the checkpoint does not open with the log's key."""

    log_key_id: str
    witnesses: tuple[tuple[str, datetime], ...] = ()
    problem: str | None = None


def _cosigned(request: Request, receipt: dict[str, Any]) -> Cosigned | None:
    """Open the receipt's checkpoint with the log's key and the configured witnesses' keys;
    None when the receipt carries no checkpoint or names no log this service keeps."""
    note, proof = receipt.get("checkpoint"), receipt.get("proof")
    civic = request.app.state.civic
    keys = civic.log_keys
    if not isinstance(note, str) or not isinstance(proof, dict) or keys is None:
        return None
    signer = keys.signers.get(str(proof.get("log")))
    if signer is None:
        return None
    log_key = signer.verifier
    trusted = [w.verifier for w in civic.settings.witness_list]
    try:  # every refusal of core.note and core.checkpoint is a ValueError
        opened = open_checkpoint(note, log_key, trusted)
        witnesses = tuple(
            (c.name, datetime.fromtimestamp(c.timestamp, UTC)) for c in opened.cosignatures
        )
    except (ValueError, OverflowError, OSError) as exc:
        return Cosigned(log_key.key_id.hex(), problem=str(exc))
    return Cosigned(log_key.key_id.hex(), witnesses)


def _explain_receipt(
    request: Request, text: str, result: ReceiptVerification, reader: ChainReader
) -> Explained:
    explained = Explained(leaf_hash=result.record_hash)
    try:
        receipt = receipt_from_json(text)
    except ValueError:
        return explained
    if not isinstance(receipt, dict):
        return explained
    explained.cosigned = _cosigned(request, receipt)
    record, proof, anchor = receipt.get("record"), receipt.get("proof"), receipt.get("anchor")
    explained.record = record if isinstance(record, dict) else None
    explained.anchor = anchor if isinstance(anchor, dict) else None
    if not isinstance(proof, dict):
        return explained
    explained.proof = proof
    try:
        index, size, path = int(proof["index"]), int(proof["size"]), list(proof["path"])
        if result.record_hash is not None:
            leaf = bytes.fromhex(result.record_hash)
            explained.steps = path_steps(leaf, index, size, [bytes.fromhex(p) for p in path])
    except (KeyError, TypeError, ValueError):
        explained.steps = None
    reached_chain = any(
        check.step >= 4 and check.name.startswith("anchored") for check in result.checks
    )
    if reached_chain and explained.anchor is not None:
        try:
            root, chain_size, at, block = reader.batch_of(
                str(explained.anchor["contract"]), log_id(str(proof["log"])), int(proof["batch"])
            )
            explained.on_chain = {
                "root": root.hex(),
                "size": chain_size,
                "block": block,
                "at": datetime.fromtimestamp(at, UTC) if at else None,
            }
        except (VerificationError, KeyError, TypeError, ValueError, OverflowError, OSError):
            explained.on_chain = None
    return explained


STATIC = Path(__file__).resolve().parent / "static"
OFFLINE_FILE = "civic-verify-offline.html"


def _csp_hash(text: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
    )


def offline_verifier_html() -> str | None:
    """The self-contained offline verifier (issue 17 item 5): static/offline/verifier.html with
    the bundle (static/dist/civic-verify.js), its page script and its style inlined, and a CSP
    that allows exactly those inline scripts and nothing from anywhere (``connect-src 'none'``).
    None when the bundle has not been built (./scripts/setup builds it)."""
    bundle_path = STATIC / "dist" / "civic-verify.js"
    if not bundle_path.is_file():
        return None
    offline = STATIC / "offline"
    bundle = bundle_path.read_text(encoding="utf-8").replace("</script", "<\\/script")
    app = (offline / "verifier.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    css = (offline / "verifier.css").read_text(encoding="utf-8")
    csp = (
        f"default-src 'none'; script-src {_csp_hash(bundle)} {_csp_hash(app)}; "
        f"style-src {_csp_hash(css)}; img-src data:; connect-src 'none'; form-action 'none'; "
        "base-uri 'none'"
    )
    built = "civic-verify.js sha256 " + hashlib.sha256(bundle.encode("utf-8")).hexdigest()[:16]
    page = (offline / "verifier.html").read_text(encoding="utf-8")
    page = page.replace("@CSP@", csp).replace("@CSS@", css).replace("@BUILT@", built)
    before, after = page.split("@APP@", 1)
    page = before + app + after
    before, after = page.split("@BUNDLE@", 1)
    return before + bundle + after


@router.get("/verify/offline.html", name="portal_verify_offline", response_model=None)
def verify_offline() -> Response:
    """The offline verifier as one HTML file to keep (downloaded, opened from disk)."""
    html = offline_verifier_html()
    if html is None:
        return PlainTextResponse(
            "the browser verifier is not built: run ./scripts/setup", status_code=503
        )
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{OFFLINE_FILE}"'},
    )


def _verify_page(
    request: Request,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    result: ReceiptVerification | None = None,
    explained: Explained | None = None,
    pending: str | None = None,
    chain_down: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "verify.html",
        status_code=status_code,
        values=values or {},
        errors=errors or FieldErrors(),
        result=result,
        explained=explained,
        pending=pending,
        chain_down=chain_down,
        labels=_labels(request),
    )


def _verify_text(request: Request, text: str, values: dict[str, str]) -> HTMLResponse:
    reader = chain_reader(request)
    try:
        result = verify_receipt_json(text, reader)
    except VerificationError as exc:
        return _verify_page(request, status_code=503, values=values, chain_down=str(exc))
    explained = _explain_receipt(request, text, result, reader)
    return _verify_page(request, values=values, result=result, explained=explained)


def _verify_hash(
    request: Request, session: Any, record_hash: str, principal: Principal | None
) -> HTMLResponse:
    values = {"record_hash": record_hash}
    errors = FieldErrors()
    if not is_hex64(record_hash):
        errors.add("record_hash", "verify.error.hash")
        return _verify_page(request, status_code=422, values=values, errors=errors)
    try:
        row = service.stored_record(session, record_hash)
        voting_service.guard_ballot_record(session, row, principal)
        receipt = service.receipt_for(session, row)
    except NotFound:
        errors.add("record_hash", "verify.error.unknown_hash")
        return _verify_page(request, status_code=404, values=values, errors=errors)
    except Forbidden:
        errors.add("record_hash", "verify.error.secret_ballot")
        return _verify_page(request, status_code=403, values=values, errors=errors)
    if isinstance(receipt, service.ReceiptPending):
        return _verify_page(request, values=values, pending=record_hash)
    return _verify_text(request, json.dumps(receipt, ensure_ascii=False), values)


@router.get("/verify", response_class=HTMLResponse, name="portal_verify")
def verify_page(request: Request, session: ReadSessionDep, record_hash: str = "") -> HTMLResponse:
    """The verify form; ``?record_hash=…`` verifies that record's receipt at once."""
    record_hash = record_hash.strip().lower()
    if record_hash:
        return _verify_hash(request, session, record_hash, portal_principal(request, session))
    return _verify_page(request)


@router.post(
    "/verify",
    response_class=HTMLResponse,
    dependencies=[Depends(verify_csrf)],
    name="portal_verify_post",
)
async def verify_submit(request: Request, form: FormDep) -> HTMLResponse:
    upload = form.get("receipt_file")
    text = _text(form, "receipt")
    values = {"receipt": text, "record_hash": _text(form, "record_hash").strip().lower()}
    errors = FieldErrors()
    if isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read(MAX_RECEIPT_BYTES + 1)
        if len(content) > MAX_RECEIPT_BYTES:
            errors.add("receipt_file", "verify.error.too_big", max=MAX_RECEIPT_BYTES // 1024)
            return _verify_page(request, status_code=413, values=values, errors=errors)
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = content.decode("utf-8", errors="replace")
        values["receipt"] = text

    def work() -> HTMLResponse:
        if text.strip():
            if len(text.encode()) > MAX_RECEIPT_BYTES:
                errors = FieldErrors()
                errors.add("receipt", "verify.error.too_big", max=MAX_RECEIPT_BYTES // 1024)
                return _verify_page(request, status_code=413, values=values, errors=errors)
            return _verify_text(request, text, values)
        if values.get("record_hash"):
            civic = request.app.state.civic
            with civic.read_sessions() as session:
                return _verify_hash(
                    request, session, values["record_hash"], portal_principal(request, session)
                )
        errors = FieldErrors()
        errors.general.append(("verify.error.nothing", {}))
        return _verify_page(request, status_code=422, values=values, errors=errors)

    return await run_in_threadpool(work)  # the chain and the store are asked synchronously
