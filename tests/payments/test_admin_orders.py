"""Admins see every order and refund from the browser: full, or the unspent share."""
from __future__ import annotations

import re

from sqlalchemy import select

from storefront.audit.models import AuditEvent


def _admin(shop):
    return shop.learner(admin=True)


def _paid_order(shop, make_pack):
    user, client = shop.learner()
    sid = shop.buy(client, make_pack(credits=10, price_cents=9000))
    shop.pay(sid)
    return user, sid


def _confirm_form(page: str) -> dict:
    return {name: value for name, value in re.findall(r'name="(mode|amount_cents|form_id|confirm)" value="([^"]*)"', page)}


def test_orders_admin_is_for_admins_only(shop, client, make_pack):
    _, sid = _paid_order(shop, make_pack)
    order_id = shop.order(sid).id
    assert client.get("/admin/orders").status_code == 302  # anonymous: log in
    _, learner = shop.learner()
    assert learner.get("/admin/orders").status_code == 403
    assert learner.get(f"/admin/orders/{order_id}").status_code == 403
    assert learner.submit(f"/admin/orders/{order_id}/refund", {"mode": "full"}).status_code == 403
    _, admin = _admin(shop)
    listing = admin.get("/admin/orders").get_data(as_text=True)
    assert f"#{order_id}" in listing
    assert admin.get("/admin/orders/9999").status_code == 404


def test_unspent_share_refund_is_shown_then_confirmed(shop, make_pack, fake_stripe, app, verify_ledger):
    user, sid = _paid_order(shop, make_pack)
    shop.spend(user, 3, "enrol:admin-test")
    order_id = shop.order(sid).id
    admin_user, admin = _admin(shop)
    detail = admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert "Unspent share: €63.00 for the 7 credits still unspent" in detail
    assert "Full refund: €90.00, asks back 10 credits" in detail and "3 already spent" in detail
    review = admin.submit(f"/admin/orders/{order_id}/refund", {"mode": "unspent"})
    assert review.status_code == 200 and "Refund €63.00" in review.get_data(as_text=True)
    assert fake_stripe.refunds == {} and shop.balance(user) == 7  # nothing done yet
    form = _confirm_form(review.get_data(as_text=True))
    done = admin.submit(f"/admin/orders/{order_id}/refund", form)
    assert done.status_code == 303
    again = admin.submit(f"/admin/orders/{order_id}/refund", form)  # double submit
    assert again.status_code == 409
    assert [r["amount"] for r in fake_stripe.refunds.values()] == [6300]
    order = shop.order(sid)
    assert (order.status, order.refunded_cents, order.credits_recovered) == ("partly-refunded", 6300, 7)
    assert shop.balance(user) == 0
    with app.app_context():
        event = app.extensions["sqlalchemy"].session.scalar(select(AuditEvent).where(AuditEvent.action == "order-refund"))
        assert event.actor_id == admin_user.id and event.target_id == str(order_id)
        assert event.details["amount_cents"] == 6300 and event.details["credits_recovered"] == 7
    # The webhook Stripe then sends changes nothing.
    pi = shop.payment_intent(sid)
    shop.webhook(fake_stripe.event("charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": pi}))
    assert shop.order(sid).refunded_cents == 6300 and shop.balance(user) == 0
    verify_ledger()


def test_full_refund_shows_what_could_not_be_clawed_back(shop, make_pack, fake_stripe, verify_ledger):
    user, sid = _paid_order(shop, make_pack)
    shop.spend(user, 4, "enrol:admin-test-2")
    order_id = shop.order(sid).id
    _, admin = _admin(shop)
    review = admin.submit(f"/admin/orders/{order_id}/refund", {"mode": "full"})
    assert "already spent (cannot be clawed back): 4" in review.get_data(as_text=True)
    assert admin.submit(f"/admin/orders/{order_id}/refund", _confirm_form(review.get_data(as_text=True))).status_code == 303
    detail = admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert re.search(r'data-testid="unrecovered">4<', detail)
    assert shop.order(sid).status == "refunded" and shop.balance(user) == 0
    verify_ledger()


def test_refund_refused_when_figures_moved_since_review(shop, make_pack, fake_stripe, verify_ledger):
    user, sid = _paid_order(shop, make_pack)
    order_id = shop.order(sid).id
    _, admin = _admin(shop)
    review = admin.submit(f"/admin/orders/{order_id}/refund", {"mode": "unspent"})
    shop.spend(user, 5, "enrol:meanwhile")
    response = admin.submit(f"/admin/orders/{order_id}/refund", _confirm_form(review.get_data(as_text=True)))
    assert response.status_code == 409 and "figures changed" in response.get_data(as_text=True)
    assert fake_stripe.refunds == {} and shop.balance(user) == 5
    verify_ledger()


def test_bad_refund_requests_change_nothing(shop, make_pack, fake_stripe):
    user, client = shop.learner()
    pending = shop.buy(client, make_pack())
    _, admin = _admin(shop)
    assert admin.submit(f"/admin/orders/{shop.order(pending).id}/refund", {"mode": "full"}).status_code == 409
    _, sid = _paid_order(shop, make_pack)
    order_id = shop.order(sid).id
    assert admin.submit(f"/admin/orders/{order_id}/refund", {"mode": "everything"}).status_code == 422
    bad = {"mode": "full", "confirm": "yes", "amount_cents": "9000", "form_id": "not-a-uuid"}
    assert admin.submit(f"/admin/orders/{order_id}/refund", bad).status_code == 422
    assert admin.post(f"/admin/orders/{order_id}/refund", data={"mode": "full"}).status_code == 400  # no CSRF
    fake_stripe.fail_next = 10
    review = admin.submit(f"/admin/orders/{order_id}/refund", {"mode": "full"})
    assert admin.submit(f"/admin/orders/{order_id}/refund", _confirm_form(review.get_data(as_text=True))).status_code == 503
    assert fake_stripe.refunds == {} and shop.order(sid).status == "paid"
