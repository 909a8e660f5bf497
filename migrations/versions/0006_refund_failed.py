"""payments: refunds that fail or are cancelled after being counted

Revision ID: 0006_refund_failed
Revises: 0005_import_progress
Create Date: 2026-12-06 10:00:00

"""
import warnings
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa


revision = '0006_refund_failed'
down_revision = '0005_import_progress'
branch_labels = None
depends_on = None


@contextmanager
def _batch():
    """SQLite's batch mode rebuilds the table and reflects the tables its foreign keys
    name (users), whose expression index SQLAlchemy cannot reflect and warns about;
    that index is not copied anyway (users is not rebuilt)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection", category=sa.exc.SAWarning)
        with op.batch_alter_table('order_refunds', schema=None) as batch_op:
            yield batch_op


def upgrade():
    with _batch() as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=32), server_default='succeeded', nullable=False))
        batch_op.add_column(sa.Column('reversed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint(batch_op.f('ck_order_refunds_reversed_only_applied'),
                                         'NOT reversed OR applied')


def downgrade():
    with _batch() as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_order_refunds_reversed_only_applied'), type_='check')
        batch_op.drop_column('reversed')
        batch_op.drop_column('status')
