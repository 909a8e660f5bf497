"""Payments: card checkouts (Stripe or the simulated provider), fulfilment exactly once,
refunds and disputes. Only `gateway` imports the `stripe` library."""


def blueprints():
    """Every blueprint of the area (registered by the app factory)."""
    from .admin_views import bp as admin_orders
    from .simulated import bp as simulated
    from .views import checkout, orders, packs
    from .webhooks import bp as stripe_webhook

    return [packs, checkout, orders, simulated, stripe_webhook, admin_orders]
