"""A local fake of the Stripe API, enough for Checkout: the real `stripe` library talks
to it through STRIPE_API_BASE (no monkeypatching of the SDK).

It serves, on 127.0.0.1 in a thread:
- POST/GET /v1/checkout/sessions[/<id>] (create with idempotency keys, retrieve, list
  with created[gte] / payment_intent filters), POST .../<id>/expire (open sessions only),
- POST/GET /v1/refunds (create with idempotency keys, list by payment_intent); a test
  can then make a refund fail or cancel it (`fail_refund`) and deliver the event,
- GET/POST /pay/<session id>: a hosted checkout page a browser can pay on; paying
  marks the session paid, delivers a signed `checkout.session.completed` webhook to the
  app (in a background thread, as Stripe does) and redirects to the success URL.

Webhooks are signed exactly as Stripe does: `Stripe-Signature: t=<unix>,v1=<hex>`, the
HMAC-SHA256 of f"{t}.{payload}" with the endpoint's whsec secret.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

WEBHOOK_SECRET = "whsec_test_fake_secret"


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def nested(pairs) -> dict:
    """Stripe's form encoding (a[b][0][c]=v) back into dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part, following in zip(parts, parts[1:] + [None]):
            if following is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node):
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


class FakeStripe:
    def __init__(self, webhook_url: str | None = None, secret: str = WEBHOOK_SECRET):
        self.webhook_url, self.secret = webhook_url, secret
        self.sessions: dict[str, dict] = {}  # by id, in creation order
        self.refunds: dict[str, dict] = {}
        self.idempotent: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.deliveries: list[int] = []
        self.expired_events: list[dict] = []  # checkout.session.expired after an expire call
        self.fail_next = 0  # answer this many API calls with 500 (provider outage)
        self.async_payments = False  # the hosted page starts a payment still to be confirmed
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeStripe":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    # --- HTTP -------------------------------------------------------------------------

    def _handle(self, handler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = nested(parse_qsl(body if method == "POST" else parts.query, keep_blank_values=True))
        path = parts.path.rstrip("/")
        with self.lock:
            self.requests.append((method, path, params))
        if path.startswith("/pay/"):
            return self._hosted_page(handler, method, path.split("/")[2])
        if self.fail_next:
            self.fail_next -= 1
            return self._json(handler, 500, {"error": {"type": "api_error", "message": "fake outage"}})
        key = handler.headers.get("Idempotency-Key")
        with self.lock:
            if method == "POST" and key and key in self.idempotent:
                return self._json(handler, 200, self.idempotent[key])
            status, answer = self._route(method, path, params)
            if method == "POST" and key and status == 200:
                self.idempotent[key] = answer
        self._json(handler, status, answer)

    def _route(self, method: str, path: str, params: dict):
        if path == "/v1/checkout/sessions" and method == "POST":
            return 200, self._create_session(params)
        if path == "/v1/checkout/sessions" and method == "GET":
            items = sorted(self.sessions.values(), key=lambda s: s["created"], reverse=True)
            gte = (params.get("created") or {}).get("gte")
            if gte:
                items = [s for s in items if s["created"] >= int(gte)]
            if params.get("payment_intent"):
                items = [s for s in items if s["payment_intent"] == params["payment_intent"]]
            return 200, self._list(items, path)
        if path.startswith("/v1/checkout/sessions/") and path.endswith("/expire") and method == "POST":
            return self._expire_session(path.split("/")[-2])
        if path.startswith("/v1/checkout/sessions/") and method == "GET":
            session = self.sessions.get(path.rsplit("/", 1)[1])
            if session is None:
                return 404, {"error": {"type": "invalid_request_error", "message": "No such checkout.session"}}
            return 200, session
        if path == "/v1/refunds" and method == "POST":
            return self._create_refund(params["payment_intent"], int(params["amount"]))
        if path == "/v1/refunds" and method == "GET":
            items = [r for r in self.refunds.values() if r["payment_intent"] == params.get("payment_intent")]
            return 200, self._list(items, path)
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL {path}"}}

    @staticmethod
    def _list(items, url):
        return {"object": "list", "data": items, "has_more": False, "url": url}

    @staticmethod
    def _json(handler, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
        handler.end_headers()
        handler.wfile.write(data)

    def _create_session(self, params: dict) -> dict:
        sid = f"cs_test_{secrets.token_hex(12)}"
        items = params.get("line_items") or []
        amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        session = {
            "id": sid, "object": "checkout.session", "mode": params.get("mode", "payment"),
            "status": "open", "payment_status": "unpaid", "amount_total": amount,
            "currency": items[0]["price_data"]["currency"] if items else "eur",
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata") or {}, "payment_intent": None,
            "success_url": params["success_url"], "cancel_url": params["cancel_url"],
            "created": int(time.time()), "livemode": False, "url": f"{self.base_url}/pay/{sid}",
        }
        self.sessions[sid] = session
        return session

    def _expire_session(self, sid: str):
        """Like Stripe: only an open session can be expired; it then sends
        checkout.session.expired (kept in `expired_events` for tests to deliver)."""
        session = self.sessions.get(sid)
        if session is None:
            return 404, {"error": {"type": "invalid_request_error", "message": "No such checkout.session"}}
        if session["status"] != "open":
            return 400, {"error": {"type": "invalid_request_error",
                                   "message": 'Only Checkout Sessions with a status in ["open"] can be expired.'}}
        session["status"] = "expired"
        self.expired_events.append(self.event("checkout.session.expired", dict(session)))
        return 200, session

    def _create_refund(self, payment_intent: str, amount: int):
        session = next((s for s in self.sessions.values() if s["payment_intent"] == payment_intent), None)
        if session is None:
            return 404, {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}}
        refunded = self._refunded(payment_intent)
        if amount <= 0 or refunded + amount > session["amount_total"]:
            return 400, {"error": {"type": "invalid_request_error", "message": "Refund amount too large"}}
        refund = {"id": f"re_{secrets.token_hex(12)}", "object": "refund", "amount": amount,
                  "currency": session["currency"], "status": "succeeded", "payment_intent": payment_intent,
                  "charge": f"ch_{payment_intent[3:]}", "created": int(time.time())}
        self.refunds[refund["id"]] = refund
        return 200, refund

    def _refunded(self, payment_intent: str) -> int:
        """What is refunded on this payment: failed and cancelled refunds gave nothing back."""
        return sum(r["amount"] for r in self.refunds.values()
                   if r["payment_intent"] == payment_intent and r["status"] not in ("failed", "canceled"))

    def _hosted_page(self, handler, method: str, sid: str) -> None:
        session = self.sessions.get(sid)
        if session is None:
            handler.send_response(404)
            handler.end_headers()
            return
        if method == "POST":
            self.complete(sid, paid=not self.async_payments, background=True)
            handler.send_response(303)
            handler.send_header("Location", session["success_url"].replace("{CHECKOUT_SESSION_ID}", sid))
            handler.end_headers()
            return
        total = f"{session['currency'].upper()} {session['amount_total'] / 100:.2f}"
        page = (f"<!doctype html><title>Fake Stripe Checkout</title><h1>Fake Stripe Checkout</h1>"
                f"<p data-testid=total>{html.escape(total)}</p>"
                f"<form method=post action=/pay/{sid}><button type=submit>Pay {html.escape(total)}</button></form>"
                f"<a href=\"{html.escape(session['cancel_url'])}\">Cancel</a>").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.write(page)

    # --- what tests make "Stripe" do -----------------------------------------------------

    def complete(self, sid: str, *, paid: bool = True, deliver: bool = True, background: bool = False) -> dict:
        """The customer paid (or started an async payment when paid=False)."""
        session = self.sessions[sid]
        session["status"] = "complete"
        session["payment_status"] = "paid" if paid else "unpaid"
        session["payment_intent"] = session["payment_intent"] or f"pi_{secrets.token_hex(12)}"
        event = self.event("checkout.session.completed", dict(session))
        if deliver:
            if background:
                threading.Thread(target=self.deliver, args=(event,), daemon=True).start()
            else:
                self.deliver(event)
        return event

    def refund(self, payment_intent: str, amount: int) -> dict:
        """A refund made in the Stripe dashboard: the charge.refunded event to deliver."""
        with self.lock:
            status, refund = self._create_refund(payment_intent, amount)
        assert status == 200, refund
        refunded = self._refunded(payment_intent)
        session = next(s for s in self.sessions.values() if s["payment_intent"] == payment_intent)
        return self.event("charge.refunded", {
            "id": refund["charge"], "object": "charge", "payment_intent": payment_intent,
            "amount": session["amount_total"], "amount_refunded": refunded,
            "refunded": refunded == session["amount_total"]})

    def refund_id(self, payment_intent: str, index: int = -1) -> str:
        """The id of a refund of this payment (the last one by default)."""
        return [r["id"] for r in self.refunds.values() if r["payment_intent"] == payment_intent][index]

    def fail_refund(self, refund_id: str, status: str = "failed", event_type: str | None = None) -> dict:
        """The bank gave the money back to the shop (failed) or the refund was cancelled:
        the refund's status changes and the event to deliver is returned
        (`refund.failed` by default for failed, `refund.updated` for canceled; pass
        e.g. "charge.refund.updated" to send that one)."""
        assert status in ("failed", "canceled")
        with self.lock:
            refund = self.refunds[refund_id]
            refund["status"] = status
            if status == "failed":
                refund["failure_reason"] = "expired_or_canceled_card"
        event_type = event_type or ("refund.failed" if status == "failed" else "refund.updated")
        return self.event(event_type, dict(refund))

    def refund_event(self, refund_id: str, event_type: str = "refund.updated", **changes) -> dict:
        """An event carrying the refund as it is now, or with `changes` (a stale copy)."""
        return self.event(event_type, {**self.refunds[refund_id], **changes})

    def dispute_event(self, kind: str, payment_intent: str, amount: int, status: str,
                      dispute_id: str | None = None) -> dict:
        dispute_id = dispute_id or f"dp_{secrets.token_hex(8)}"
        return self.event(f"charge.dispute.{kind}", {
            "id": dispute_id, "object": "dispute", "amount": amount, "status": status,
            "payment_intent": payment_intent, "charge": f"ch_{payment_intent[3:]}", "reason": "fraudulent"})

    def event(self, event_type: str, obj: dict) -> dict:
        return {"id": f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": "2025-09-30.clover",
                "created": int(time.time()), "type": event_type, "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}

    def signed(self, event: dict, secret: str | None = None, timestamp: int | None = None):
        payload = json.dumps(event)
        return payload, {"Content-Type": "application/json",
                         "Stripe-Signature": sign(payload, secret or self.secret, timestamp)}

    def deliver(self, event: dict, url: str | None = None) -> int:
        """POST the event, signed, to the app's webhook URL over HTTP; the status code."""
        payload, headers = self.signed(event)
        request = urllib.request.Request(url or self.webhook_url, data=payload.encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        with self.lock:
            self.deliveries.append(status)
        return status
