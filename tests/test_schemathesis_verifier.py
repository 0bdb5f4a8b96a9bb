"""schemathesis against the verifier service's OpenAPI document, in process.

The verifier reads an in-memory chain (``FakeChain``, which a unit test may use: CONVENTIONS
§9) on which one batch and one whole trail are anchored, and an API answered by an
``httpx.MockTransport``: that trail for its tracking code, that batch's export, a pending batch,
404 for anything else. Generated requests (valid and invalid, and real receipts with one part
replaced by arbitrary JSON) must never be answered with a 5xx and must conform to the
document. Bounded like the API's run (``CIVIC_FUZZ_EXAMPLES``, default 12, derandomised).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from tests.test_schemathesis_api import fuzz_operations, fuzz_settings
from tests.verifier.fakes import (
    LOOP,
    SUBJECT,
    Batch,
    FakeChain,
    loop_writer,
    seal_trail,
    suggestion_batch,
)
from verifier.service import create_verifier_app

API = "http://civic.test"

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def verifier_under_test() -> tuple[Any, Batch]:
    chain = FakeChain()
    batch = Batch.of(suggestion_batch(7))
    chain.anchor(batch)
    trail = seal_trail(loop_writer(len(LOOP)).records, chain, pending=1)
    export = {
        "log": batch.log,
        "batch": batch.number,
        "root": batch.root.hex(),
        "size": len(batch.records),
        "leaf_hashes": [r.record_hash for r in batch.records],
    }

    def api(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"/api/v1/suggestions/{SUBJECT}/trail":
            return httpx.Response(
                200, json={"tracking_code": SUBJECT, "state": "CLOSED", "records": trail}
            )
        if path == f"/api/v1/anchors/{batch.log}/{batch.number}":
            return httpx.Response(200, json=export)
        if path == f"/api/v1/anchors/{batch.log}/{batch.number + 1}":
            return httpx.Response(202, json={"status": "pending", "detail": "being anchored"})
        return httpx.Response(404, json={"error": "NotFound", "detail": "nothing here"})

    app = create_verifier_app(
        rpc_url="http://fake.test",
        api_url=API,
        reader_factory=lambda _rpc, _timeout: chain,
        http_transport=httpx.MockTransport(api),
    )
    return app, batch


def test_every_verifier_operation_answers_without_server_errors_and_as_documented() -> None:
    app, batch = verifier_under_test()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    known = {"tracking_code": SUBJECT, "log": batch.log, "n": str(batch.number)}
    failures = fuzz_operations(schema, {"anonymous": None}, known)
    assert not failures, "\n\n".join(
        f"== {label}\n" + "\n".join(found) for label, found in failures.items()
    )


def _replace_at(value: Any, path: list[Any], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copied = copy.copy(value)
    copied[head] = _replace_at(value[head], rest, new)
    return copied


def _paths(value: Any, prefix: list[Any]) -> list[list[Any]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, [*prefix, key])
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, [*prefix, index])
    return found


def test_a_receipt_with_any_part_replaced_gets_a_verdict_never_a_server_error() -> None:
    """Real receipts, one part (any depth) replaced by arbitrary JSON: always 200 and a verdict
    from PROTOCOL §5, and ``valid`` only when the replacement changed nothing."""
    app, batch = verifier_under_test()
    receipts = [batch.receipt(i) for i in range(len(batch.records))]
    client = schemathesis.python.asgi.get_client(app)

    @fuzz_settings()
    @given(data=st.data(), index=st.integers(0, len(receipts) - 1), new=JSON)
    def check(data: st.DataObject, index: int, new: Any) -> None:
        receipt = receipts[index]
        path = data.draw(st.sampled_from(_paths(receipt, [])[1:]))
        changed = _replace_at(receipt, path, new)
        response = client.post(
            "/verify/receipt",
            data=json.dumps(changed, allow_nan=True),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        verdict = response.json()["verdict"]
        assert isinstance(verdict, str)
        if verdict == "valid":
            assert changed == receipt or json.dumps(changed) == json.dumps(receipt), path

    with client:
        check()
