"""Without a Stripe key: the simulated provider's "Test payment — no money moves" page."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import storefront.payments


@pytest.fixture
def app_config():
    return {"STRIPE_SECRET_KEY": None, "MAIL_BACKEND": "memory"}


def _buy(shop, make_pack, **pack):
    user, client = shop.learner()
    response = client.submit(f"/packs/{make_pack(**pack)}/buy")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "/checkout/simulated/cs_sim_" in location
    return user, client, location.split("://", 1)[-1].split("/", 1)[1]


def test_simulated_checkout_pays_through_the_same_fulfilment(shop, make_pack, verify_ledger):
    user, client, path = _buy(shop, make_pack, credits=10, price_cents=9000)
    page = client.get("/" + path).get_data(as_text=True)
    assert "Test payment — no money moves" in page and "€90.00" in page
    paid = client.submit(f"/{path}/pay")
    assert paid.status_code == 303 and "/checkout/success?session_id=cs_sim_" in paid.headers["Location"]
    success = client.get(paid.headers["Location"]).get_data(as_text=True)
    assert "Payment received: 10 credits added" in success
    assert client.submit(f"/{path}/pay").status_code == 303  # paying twice grants once
    assert shop.balance(user) == 10 and len(shop.outbox()) == 1
    verify_ledger()


def test_simulated_cancel_and_decline_charge_nothing(shop, make_pack, verify_ledger):
    user, client, cancelled = _buy(shop, make_pack)
    response = client.submit(f"/{cancelled}/cancel")
    assert response.headers["Location"].split("?")[0].endswith("/checkout/cancel")
    assert "Payment cancelled" in client.get(response.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert "expired" in client.get("/orders").get_data(as_text=True)
    other, other_client, declined = _buy(shop, make_pack)
    page = other_client.submit(f"/{declined}/decline", follow_redirects=True).get_data(as_text=True)
    assert "The card was declined" in page
    assert "failed" in other_client.get("/orders").get_data(as_text=True)
    assert shop.balance(user) == 0 and shop.balance(other) == 0
    verify_ledger()


def test_simulated_page_belongs_to_its_buyer(shop, make_pack):
    owner, _, path = _buy(shop, make_pack)
    _, intruder = shop.learner()
    assert intruder.get("/" + path).status_code == 404
    assert intruder.submit(f"/{path}/pay").status_code == 404
    assert shop.balance(owner) == 0


def test_admin_refund_with_the_simulated_provider(shop, make_pack, verify_ledger):
    user, client, path = _buy(shop, make_pack)
    client.submit(f"/{path}/pay")
    _, admin = shop.learner(admin=True)
    review = admin.submit("/admin/orders/1/refund", {"mode": "full"}).get_data(as_text=True)
    assert "Refund €90.00" in review
    form_id = review.split('name="form_id" value="')[1].split('"')[0]
    done = admin.submit("/admin/orders/1/refund", {"mode": "full", "confirm": "yes", "amount_cents": "9000",
                                                   "form_id": form_id})
    assert done.status_code == 303 and shop.balance(user) == 0
    verify_ledger()


def test_simulated_provider_is_never_active_with_a_stripe_key(shop, make_pack, app):
    _, client, path = _buy(shop, make_pack)
    app.config["STRIPE_SECRET_KEY"] = "sk_test_now_configured"
    assert client.get("/" + path).status_code == 404
    assert client.submit(f"/{path}/pay").status_code == 404


def test_only_the_gateway_imports_stripe():
    package = Path(storefront.payments.__file__).parent
    importers = set()
    for source in Path(package).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(n == "stripe" or n.startswith("stripe.") for n in names):
                importers.add(source.relative_to(package.parent).as_posix())
    assert importers == {"payments/gateway.py"}
