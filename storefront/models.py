"""Imports every domain's models so that SQLAlchemy's metadata (and Alembic) see them all."""
from .audit.models import AuditEvent  # noqa: F401
from .auth.models import User, UserSearchTerm  # noqa: F401
from .auth import search  # noqa: F401  (keeps user_search_terms on every flush)
from .catalog.models import Course, Pack  # noqa: F401
from .ledger.models import Account, Entry, Lot, Movement  # noqa: F401
from .enrolment.models import Enrolment  # noqa: F401
from .admin.models import BulkOperation, CreditImport, SavedFilter  # noqa: F401
from .payments.models import Dispute, Order, Refund, SimulatedSession  # noqa: F401
