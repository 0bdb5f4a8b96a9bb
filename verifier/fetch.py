"""Fetching what the civic-ledger service publishes, over HTTP: a suggestion's trail, and what
a tally check needs (the simulation, receipts, the trail back to ``simulation.opened``, the
ballots).

The service is trusted for nothing but handing these over: every answer is parsed as strictly
as a receipt (no duplicate keys, no NaN, bounded nesting), and everything in it is checked
against the chain by ``verifier.trail`` and ``verifier.tally``, which do no HTTP themselves.
When no answer can be had the errors are ``TrailUnavailable`` and ``TallyUnavailable`` (with
``UnknownTrackingCode`` and ``UnknownSimulation`` for a 404). And a batch export, which
``verifier.batch`` checks (``BatchUnavailable``, ``UnknownBatch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from core.records import is_hex64
from verifier.errors import (
    BatchUnavailable,
    ReceiptMalformed,
    TallyUnavailable,
    TrailUnavailable,
    UnknownBatch,
    UnknownSimulation,
    UnknownTrackingCode,
    VerificationError,
)
from verifier.receipt import receipt_from_json

TRAIL_PATH = "/api/v1/suggestions/{code}/trail"
BATCH_PATH = "/api/v1/anchors/{log}/{batch}"
SIMULATION_PATH = "/api/v1/simulations/{id}"
BALLOTS_PATH = "/api/v1/simulations/{id}/ballots"
RECEIPT_PATH = "/api/v1/records/{hash}/receipt"
MAX_TRAIL = 1000  # records followed back from the tally to the opened record


class ServiceClient:
    """GETs from the service's public API over one HTTP client (kept alive between requests,
    for callers that make many: ``civic-verify monitor``), every answer judged the same way:
    ``unavailable`` is raised for a URL that is not http(s), no answer, a status other than
    ``accept`` (any 2xx by default) or, from ``get_json``, an answer that is not strict JSON
    (parsed as strictly as a receipt). A 404 is returned for the caller to name what is
    unknown."""

    def __init__(
        self,
        api: str,
        unavailable: type[VerificationError],
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(api)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise unavailable(f"{api!r} is not an http(s) URL of the service")
        self.given, self.api = api, api.rstrip("/")
        self.unavailable, self.timeout = unavailable, timeout
        self.client = httpx.Client(transport=transport, timeout=timeout, follow_redirects=True)

    def get(
        self,
        path: str,
        what: str,
        *,
        params: dict[str, int] | None = None,
        accept: tuple[int, ...] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[str, httpx.Response | None]:
        """``GET {api}{path}``: (url, the response), or (url, None) for a 404."""
        url = self.api + path
        try:
            response = self.client.get(url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise self.unavailable(
                f"no answer from {url} within {self.timeout:g} s ({exc})"
            ) from exc
        except httpx.HTTPError as exc:
            raise self.unavailable(f"cannot reach {self.given}: {exc}") from exc
        status = response.status_code
        if status == 404:
            return url, None
        if not (response.is_success if accept is None else status in accept):
            raise self.unavailable(f"{url} answered HTTP {status}, not {what}")
        return url, response

    def get_json(
        self,
        path: str,
        what: str,
        *,
        params: dict[str, int] | None = None,
        accept: tuple[int, ...] | None = None,
    ) -> tuple[str, int, Any]:
        """(url, status, the answer parsed strictly), or (url, 404, None)."""
        url, response = self.get(
            path, what, params=params, accept=accept, headers={"Accept": "application/json"}
        )
        if response is None:
            return url, 404, None
        try:
            return url, response.status_code, receipt_from_json(response.content)
        except ReceiptMalformed as exc:
            raise self.unavailable(f"{url} did not answer with strict JSON: {exc}") from exc

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _get_strict_json(
    api: str,
    path: str,
    unavailable: type[VerificationError],
    what: str,
    *,
    timeout: float,
    transport: httpx.BaseTransport | None,
    accept: tuple[int, ...] | None = None,
) -> tuple[str, int, Any]:
    """One ``ServiceClient.get_json`` on a client of its own."""
    with ServiceClient(api, unavailable, timeout=timeout, transport=transport) as service:
        return service.get_json(path, what, accept=accept)


# -- a suggestion's trail --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishedTrail:
    """The service's trail listing: its entries in seq order (the argument of
    ``verify_trail``), and the state the service says the suggestion is in (None when it does
    not say)."""

    records: list[Any]
    state: str | None
    # PROTOCOL §10/§11: the trail's head in the map of the latest anchored batch (the
    # answer's "map"; None when the service shows none).
    map: Any = None


def fetch_trail(
    api: str, tracking_code: str, *, timeout: float, transport: httpx.BaseTransport | None = None
) -> PublishedTrail:
    """``GET {api}/api/v1/suggestions/{code}/trail``: ``{"tracking_code", "state", "records"}``.

    Raises UnknownTrackingCode on 404 and TrailUnavailable when there is no trail to verify.
    """
    path = TRAIL_PATH.format(code=quote(tracking_code, safe=""))
    url, status, answer = _get_strict_json(
        api, path, TrailUnavailable, "a trail", timeout=timeout, transport=transport
    )
    if status == 404:
        raise UnknownTrackingCode(f"unknown tracking code {tracking_code!r} at {api} (HTTP 404)")
    if not isinstance(answer, dict) or not isinstance(answer.get("records"), list):
        raise TrailUnavailable(f"{url} did not answer with a trail (no records list)")
    state = answer.get("state")
    return PublishedTrail(
        answer["records"], state if isinstance(state, str) else None, answer.get("map")
    )


CHECKPOINT_PATH = "/api/v1/logs/{log}/checkpoint"


def fetch_checkpoint(
    api: str, log: str, *, timeout: float, transport: httpx.BaseTransport | None = None
) -> str | None:
    """``GET {api}/api/v1/logs/{log}/checkpoint``: the log's latest cosigned checkpoint (a
    C2SP signed note, unverified), or None when the service has none (404). Raises
    TrailUnavailable when there is no answer."""
    with ServiceClient(api, TrailUnavailable, timeout=timeout, transport=transport) as service:
        _, response = service.get(CHECKPOINT_PATH.format(log=quote(log, safe="")), "a checkpoint")
    if response is None:
        return None
    try:
        return response.content.decode("utf-8")
    except UnicodeDecodeError:
        return response.content.decode("utf-8", errors="replace")


# -- what a tally check needs ---------------------------------------------------------------


@dataclass
class TallyInputs:
    """What ``fetch_tally_inputs`` read: the arguments of ``verify_tally``.

    ``tally_receipt`` is None while the tally record is pending (``tally_status`` says why).
    """

    simulation: dict[str, Any]
    tally_receipt: Any
    tally_status: str
    opened_receipt: Any
    between_receipts: list[Any] | None
    ballots: list[Any]


class _Service:
    """The service's public API as a tally check reads it: one client, one bearer token."""

    def __init__(self, client: httpx.Client, api: str, token: str | None) -> None:
        self.client, self.api = client, api.rstrip("/")
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str) -> tuple[int, Any]:
        url = self.api + path
        try:
            response = self.client.get(url, headers=self.headers)
        except httpx.TimeoutException as exc:
            raise TallyUnavailable(f"no answer from {url} ({exc})") from exc
        except httpx.HTTPError as exc:
            raise TallyUnavailable(f"cannot reach {self.api}: {exc}") from exc
        if response.status_code in (401, 403, 404):
            return response.status_code, None
        if not response.is_success:
            raise TallyUnavailable(f"{url} answered HTTP {response.status_code}")
        try:
            return response.status_code, receipt_from_json(response.content)
        except ReceiptMalformed as exc:
            raise TallyUnavailable(f"{url} did not answer with strict JSON: {exc}") from exc

    def receipt(self, record_hash: str) -> tuple[str, Any]:
        """("anchored", receipt) | ("pending", None) | ("hidden", None) | ("unknown", None)."""
        status, answer = self.get(RECEIPT_PATH.format(hash=record_hash))
        if status == 200 and isinstance(answer, dict):
            return "anchored", answer
        if status == 202:
            return "pending", None
        if status in (401, 403):
            return "hidden", None
        return "unknown", None


def fetch_tally_inputs(
    api: str,
    simulation_id: str,
    *,
    token: str | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> TallyInputs:
    """Read a simulation, its tally's receipt, its trail back to ``simulation.opened`` (by the
    records' ``prev`` links) and its ballots with the receipts of those shown, from the public
    API; ``token`` (bearer) is an inspector's or the voter's, to see hidden ballots."""
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TallyUnavailable(f"{api!r} is not an http(s) URL of the service")
    sim_path = quote(simulation_id, safe="")
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=True) as client:
        service = _Service(client, api, token)
        status, simulation = service.get(SIMULATION_PATH.format(id=sim_path))
        if status == 404:
            raise UnknownSimulation(f"unknown simulation {simulation_id!r} at {api} (HTTP 404)")
        if not isinstance(simulation, dict) or status != 200:
            raise TallyUnavailable(f"{api} did not answer with a simulation (HTTP {status})")
        record_hash = simulation.get("tally_record")
        if not isinstance(record_hash, str) or not is_hex64(record_hash):
            raise TallyUnavailable(
                f"{simulation_id} is {simulation.get('state')!r}: it has no tally record yet"
            )
        tally_status, tally_receipt = service.receipt(record_hash)
        inputs = TallyInputs(simulation, tally_receipt, tally_status, None, None, [])
        if tally_receipt is None:
            return inputs
        # Follow prev from the tally back to seq 0: the simulation.opened record.
        walked: list[Any] = []
        record = tally_receipt.get("record")
        seen = {record_hash}
        while isinstance(record, dict) and is_hex64(record.get("prev")):
            prev = record["prev"]
            if prev in seen or len(walked) >= MAX_TRAIL:
                break
            seen.add(prev)
            _, receipt = service.receipt(prev)
            if receipt is None:
                walked = []  # the trail cannot be followed: verify_tally notes it
                break
            walked.append(receipt)
            record = receipt.get("record")
        if walked:
            walked.reverse()
            inputs.opened_receipt, inputs.between_receipts = walked[0], walked[1:]
        status, listing = service.get(BALLOTS_PATH.format(id=sim_path))
        if status != 200 or not isinstance(listing, dict):
            raise TallyUnavailable(f"{api} did not list the ballots of {simulation_id}")
        ballots = listing.get("ballots")
        if not isinstance(ballots, list):
            raise TallyUnavailable(f"{api} did not list the ballots of {simulation_id}")
        for entry in ballots:
            if isinstance(entry, dict) and "voter" in entry and is_hex64(entry.get("record_hash")):
                found, receipt = service.receipt(entry["record_hash"])
                entry["receipt"], entry["receipt_status"] = receipt, found
        inputs.ballots = ballots
    return inputs


# -- a batch export ---------------------------------------------------------------------------


def fetch_batch_export(
    api: str,
    log: str,
    batch: int,
    *,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any] | str:
    """``GET {api}/api/v1/anchors/{log}/{batch}``: the export, or the service's reason (a str)
    when it answers 202 (the batch is sealed and being anchored).

    Raises UnknownBatch on 404 and BatchUnavailable when no export can be had. The answer is
    parsed as strictly as a receipt (no duplicate keys, no NaN, bounded nesting).
    """
    path = BATCH_PATH.format(log=log, batch=batch)
    url, status, answer = _get_strict_json(
        api,
        path,
        BatchUnavailable,
        "a batch",
        timeout=timeout,
        transport=transport,
        accept=(200, 202),
    )
    if status == 404:
        raise UnknownBatch(f"the service has no batch {batch} of log {log!r} (HTTP 404)")
    if status == 202:
        detail = answer.get("detail") if isinstance(answer, dict) else None
        return detail if isinstance(detail, str) and detail else "the batch is being anchored"
    if not isinstance(answer, dict):
        raise BatchUnavailable(f"{url} did not answer with a JSON object")
    return answer
