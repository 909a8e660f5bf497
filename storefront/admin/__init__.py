"""Admin area: learners' credits (list, filter, adjustments, bulk, import/export),
the audit log, the dashboard and the credit packs. Every route is `admin_required`."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import (  # noqa: E402,F401  (the modules add their routes to bp)
    bulk_views, navigation, packs_views, reports_views, views)
