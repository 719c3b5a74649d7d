"""A small REST "CRM" and webhook receiver, run as its own process on loopback for tests.

``python -m tests.sources.crm_server PORT TOKEN SECRET``. Routes (Bearer TOKEN required on
``/api``): ``GET /api/contacts?phone=E164`` -> ``{"items": [contact]}``;
``GET /api/contacts/ID/orders`` -> ``{"data": [order]}``; ``GET /api/delay?ms=N`` -> a
balance after N ms; ``GET /api/slow`` never answers in time; ``GET /api/broken`` -> 500.
``POST /hooks/screenpop`` receives activities, checks the Standard Webhooks signature with
SECRET (an independent implementation of the scheme) and keeps each; ``GET /received``
lists them; ``GET /stats`` counts requests per path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CONTACTS = {
    "+442079460111": {"id": "C-100", "name": "Ada Byron (CRM)", "email": "ada@example.org",
                      "segment": "gold", "consent": True},
    "+447700900222": {"id": "C-200", "name": "Brian Cox (CRM)", "email": None,
                      "segment": "silver", "consent": False},
}  # fmt: skip
ORDERS = {
    "C-100": [
        {"number": "W-9001", "placed": "2026-11-30T10:15:00Z", "amount": {"value": 120.5,
         "currency": "GBP"}, "state": "shipped"},
        {"number": "W-9000", "placed": "2026-10-02T09:00:00Z", "amount": {"value": 35.0,
         "currency": "GBP"}, "state": "delivered"},
    ],
}  # fmt: skip


class State:
    token = ""
    secret = b""
    received: list[dict[str, Any]] = []
    stats: Counter[str] = Counter()
    lock = threading.Lock()


def verify(headers: Any, body: bytes) -> bool:
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    expected = base64.b64encode(
        hmac.new(State.secret, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    given = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if "," in s]
    return any(hmac.compare_digest(expected, g) for g in given)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, value: Any) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        with State.lock:
            State.stats[url.path] += 1
        if url.path == "/received":
            return self._json(200, State.received)
        if url.path == "/stats":
            return self._json(200, dict(State.stats))
        if self.headers.get("authorization") != f"Bearer {State.token}":
            return self._json(401, {"error": "unauthorized"})
        if url.path == "/api/contacts":
            phone = parse_qs(url.query).get("phone", [""])[0]
            found = CONTACTS.get(phone)
            return self._json(200, {"items": [found] if found else []})
        if url.path.startswith("/api/contacts/") and url.path.endswith("/orders"):
            contact = url.path.split("/")[3]
            return self._json(200, {"data": ORDERS.get(contact, [])})
        if url.path == "/api/delay":
            query = parse_qs(url.query)
            time.sleep(int(query.get("ms", ["50"])[0]) / 1000)
            return self._json(200, {"amount": 12.5, "currency": "GBP"})
        if url.path == "/api/slow":
            time.sleep(5)
            return self._json(200, {"amount": 1})
        if url.path == "/api/broken":
            return self._json(500, {"error": "boom"})
        return self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/hooks/screenpop":
            return self._json(404, {"error": "not found"})
        if not verify(self.headers, body):
            return self._json(401, {"error": "bad signature"})
        with State.lock:
            State.received.append({"id": self.headers["webhook-id"], "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()


def main() -> None:
    port, State.token, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    State.secret = base64.b64decode(secret.removeprefix("whsec_"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
