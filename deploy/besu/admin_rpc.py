#!/usr/bin/env python3
"""Call one JSON-RPC method on a Besu node's operator listener (QBFT, ADMIN, PERM).

Usage, on the node's own host (Python 3.9 or later, nothing else needed):

    python3 admin_rpc.py qbft_getValidatorsByBlockNumber latest
    python3 admin_rpc.py qbft_proposeValidatorVote 0xVALIDATOR… true
    python3 admin_rpc.py perm_reloadPermissionsFromFile
    python3 admin_rpc.py --url ws://127.0.0.1:8546 admin_peers

Each parameter is read as JSON when it parses (``true``, ``42``, ``["a"]``) and taken as a
string otherwise (``latest``, ``0xabc…``). Prints the result as JSON; exits 1 with the node's
error message when it answers an error, 2 when it cannot be reached.

Why a WebSocket: Besu has one JSON-RPC listener over HTTP, which serves civic-ledger, the
verifier and the witnesses on the node's private address with ETH, NET and WEB3 only. The APIs
that vote validators in or out, manage peers and reload the allowlists are enabled on a second
listener, JSON-RPC over WebSocket, bound to 127.0.0.1 (deploy/besu/generate.py writes
``rpc-ws-host="127.0.0.1"``, ``rpc-ws-api=["QBFT", "ADMIN", "PERM"]``): only someone on the
node's own host reaches it. Besu's WebSocket port answers no plain HTTP requests, hence this
small client (RFC 6455: one text message out, one in), with no dependency to install.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "ws://127.0.0.1:8546"
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_TEXT, _CLOSE, _PING, _CONTINUATION = 0x1, 0x8, 0x9, 0x0


class AdminRpcError(Exception):
    """The listener could not be reached, or did not speak WebSocket."""


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AdminRpcError("the node closed the connection")
        data += chunk
    return data


def _send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """One final frame, masked as every client frame must be (RFC 6455 §5.3)."""
    header = bytes([0x80 | opcode])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 2**16:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", length)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(header + mask + masked)


def _read_message(sock: socket.socket) -> str:
    """The next text message, answering pings and joining fragments on the way."""
    parts: list[bytes] = []
    while True:
        first, second = _read_exactly(sock, 2)
        opcode, final = first & 0x0F, bool(first & 0x80)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", _read_exactly(sock, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", _read_exactly(sock, 8))
        mask = _read_exactly(sock, 4) if second & 0x80 else b""
        payload = _read_exactly(sock, length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if opcode == _PING:
            _send_frame(sock, 0xA, payload)
        elif opcode == _CLOSE:
            raise AdminRpcError("the node closed the WebSocket before answering")
        elif opcode in (_TEXT, _CONTINUATION):
            parts.append(payload)
            if final:
                return b"".join(parts).decode("utf-8")


def call(url: str, method: str, params: list[Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one JSON-RPC request over a WebSocket at ``url``; return the JSON-RPC answer."""
    where = urlsplit(url)
    if where.scheme != "ws" or not where.hostname:
        raise AdminRpcError(f"{url}: give a ws://host:port URL (the listener is plain, loopback)")
    port = where.port or 80
    try:
        sock = socket.create_connection((where.hostname, port), timeout=timeout)
    except OSError as exc:
        raise AdminRpcError(f"{url}: {exc}") from exc
    with sock:
        key = base64.b64encode(os.urandom(16)).decode()
        host = f"{where.hostname}:{port}"  # Besu checks it against host-allowlist
        request = (
            f"GET {where.path or '/'} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            sock.sendall(request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise AdminRpcError(f"{url}: the node closed the connection")
                head += chunk
            status, *header_lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines)
            }
            # RFC 6455 §4.2.2: the server proves it read our key (SHA-1 as a checksum only).
            digest = hashlib.sha1(key.encode() + _ACCEPT_GUID, usedforsecurity=False).digest()
            accept = base64.b64encode(digest).decode("ascii")
            upgraded = status.split(" ")[1:2] == ["101"]
            if not upgraded or headers.get("sec-websocket-accept") != accept:
                raise AdminRpcError(f"{url} refused the WebSocket: {status}")
            message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            _send_frame(sock, _TEXT, json.dumps(message).encode())
            answer: dict[str, Any] = json.loads(_read_message(sock))
            _send_frame(sock, _CLOSE, struct.pack("!H", 1000))
        except OSError as exc:
            raise AdminRpcError(f"{url}: {exc}") from exc
    return answer


def _param(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Call a JSON-RPC method on a Besu node's loopback operator listener."
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"(default {DEFAULT_URL})")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("method", help="e.g. qbft_getValidatorsByBlockNumber")
    parser.add_argument("params", nargs="*", help="JSON values, or strings")
    args = parser.parse_args(argv)
    try:
        answer = call(args.url, args.method, [_param(p) for p in args.params], args.timeout)
    except AdminRpcError as exc:
        print(f"admin_rpc: {exc}", file=sys.stderr)
        return 2
    if "error" in answer:
        print(f"admin_rpc: {args.method}: {json.dumps(answer['error'])}", file=sys.stderr)
        return 1
    print(json.dumps(answer.get("result"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
