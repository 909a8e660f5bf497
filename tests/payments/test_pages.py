"""The learner's pages after paying: success (with polling), orders and receipts."""
from __future__ import annotations

from storefront.payments.models import Order


def test_success_page_fulfils_when_the_webhook_never_came(shop, make_pack, verify_ledger):
    pack = make_pack(credits=10)
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    shop.pay(sid, deliver=False)
    page = client.get(f"/checkout/success?session_id={sid}")
    assert page.status_code == 200
    assert "Payment received: 10 credits added" in page.get_data(as_text=True)
    assert 'data-testid="balance">10<' in page.get_data(as_text=True)
    assert shop.balance(user) == 10
    verify_ledger()


def test_success_page_polls_while_confirming_then_stops(shop, make_pack, fake_stripe, verify_ledger):
    pack = make_pack(credits=10)
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    shop.pay(sid, paid=False)  # Stripe still confirming the payment
    page = client.get(f"/checkout/success?session_id={sid}").get_data(as_text=True)
    assert "being confirmed" in page and 'hx-trigger="load delay:1s"' in page
    poll = client.htmx("GET", f"/checkout/success?session_id={sid}")
    assert 'data-state="pending"' in poll.get_data(as_text=True) and "<html" not in poll.get_data(as_text=True)
    fake_stripe.sessions[sid]["payment_status"] = "paid"  # confirmed; webhook delivered
    shop.webhook(fake_stripe.event("checkout.session.async_payment_succeeded", fake_stripe.sessions[sid]))
    poll = client.htmx("GET", f"/checkout/success?session_id={sid}")
    body = poll.get_data(as_text=True)
    assert "Payment received: 10 credits added" in body and "hx-trigger" not in body
    assert "credits-changed" in poll.headers["HX-Trigger"]  # the widget refreshes
    verify_ledger()


def test_another_learners_session_is_refused_on_the_success_page(shop, make_pack, verify_ledger):
    pack = make_pack()
    owner, owner_client = shop.learner()
    sid = shop.buy(owner_client, pack)
    shop.pay(sid, deliver=False)
    _, intruder = shop.learner()
    assert intruder.get(f"/checkout/success?session_id={sid}").status_code == 404
    assert intruder.get("/checkout/success?session_id=cs_test_nothing").status_code == 404
    assert intruder.get("/checkout/success").status_code == 404
    assert shop.balance(owner) == 0  # nothing happened on the intruder's request
    verify_ledger()


def test_success_page_needs_login(client):
    assert client.get("/checkout/success?session_id=cs_x").status_code == 302


def test_orders_list_and_printable_receipt_are_private(shop, make_pack):
    pack = make_pack(credits=10, price_cents=9000, name="Starter pack")
    user, client = shop.learner()
    sid = shop.buy(client, pack)
    shop.pay(sid)
    unpaid = shop.buy(client, pack)
    page = client.get("/orders").get_data(as_text=True)
    assert "Starter pack" in page and "paid" in page and "pending" in page
    order = shop.order(sid)
    receipt = client.get(f"/orders/{order.id}")
    text = receipt.get_data(as_text=True)
    assert receipt.status_code == 200 and "Receipt" in text and "€90.00" in text and "10 credits" in text
    _, other = shop.learner()
    assert other.get(f"/orders/{order.id}").status_code == 404
    assert other.get(f"/orders/{shop.order(unpaid).id}").status_code == 404
    assert "Starter pack" not in other.get("/orders").get_data(as_text=True)


def test_pages_speak_french(shop, make_pack):
    pack = make_pack(credits=10, price_cents=9000)
    _, client = shop.learner()
    client.submit("/lang", {"lang": "fr"})
    page = client.get("/packs").get_data(as_text=True)
    assert "Packs de crédits" in page and "par crédit" in page
    sid = shop.buy(client, pack)
    shop.pay(sid)
    assert "Paiement reçu : 10 crédits ajoutés" in client.get(f"/checkout/success?session_id={sid}").get_data(as_text=True)


def test_receipt_email_says_what_was_bought(shop, make_pack, app):
    pack = make_pack(credits=10, price_cents=9000, name="Starter pack")
    user, client = shop.learner()
    shop.pay(shop.buy(client, pack))
    mail = shop.outbox()[0]
    assert mail["to"] == user.email
    assert "Starter pack" in mail["body"] and "EUR 90.00" in mail["body"] and "10 credits" in mail["body"]
    with app.app_context():
        assert Order.query.count() == 1
