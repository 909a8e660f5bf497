"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""
import os

from werkzeug.middleware.proxy_fix import ProxyFix

from storefront import create_app

app = create_app()

# Behind a reverse proxy (TLS terminated there), trust its X-Forwarded-* headers so that
# URLs and the Secure cookie flag follow the client's scheme.
_proxies = int(os.environ.get("TRUSTED_PROXIES", "0") or 0)
if _proxies:
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=_proxies, x_proto=_proxies, x_host=_proxies)
