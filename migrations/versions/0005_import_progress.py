"""admin: progress and heartbeat of credit imports, visible from every worker

Revision ID: 0005_import_progress
Revises: 0004_admin
Create Date: 2026-12-06 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_import_progress'
down_revision = '0004_admin'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin_credit_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rows_processed', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempt', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('admin_credit_imports', schema=None) as batch_op:
        batch_op.drop_column('attempt')
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('rows_processed')
