"""A small HTTP proxy for the browser tests: it forwards every GET to the portal and can
rewrite the trail answer (``GET /api/v1/suggestions/{code}/trail``) on its way to the page, as
a dishonest or broken operator would: drop the last record, change a record, forge a
cosignature. The page is loaded through the proxy, so for its CSP the proxy is 'self'."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Rewrite = Callable[[str, bytes], bytes | None]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
_SKIP = _HOP | {"host", "accept-encoding"}


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.rewrite: Rewrite | None = None
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.seen.append(self.path)
                sent = {k: v for k, v in self.headers.items() if k.lower() not in _SKIP}
                answer = httpx.get(proxy.upstream + self.path, headers=sent, timeout=30)
                status, body = answer.status_code, answer.content
                if proxy.rewrite is not None:
                    changed = proxy.rewrite(self.path, body)
                    if changed is not None:
                        body = changed
                self.send_response(status)
                for key, value in answer.headers.items():
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[Proxy]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def trail_rewrite(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    """A rewrite that applies ``change`` to the parsed trail answer."""

    def rewrite(path: str, body: bytes) -> bytes | None:
        if not (path.startswith("/api/v1/suggestions/") and path.endswith("/trail")):
            return None
        answer = json.loads(body)
        change(answer)
        return json.dumps(answer, ensure_ascii=False).encode("utf-8")

    return rewrite
