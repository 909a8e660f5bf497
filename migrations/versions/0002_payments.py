"""payments: orders, refunds, disputes, simulated sessions

Revision ID: 0002_payments
Revises: 0001_foundation
Create Date: 2026-12-04 21:12:23.438891

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002_payments'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None


def upgrade():
    
    op.create_table('simulated_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('payment_intent', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payment_status', sa.String(length=16), nullable=False),
    sa.Column('amount_total', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('client_reference_id', sa.String(length=64), nullable=False),
    sa.Column('session_metadata', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('success_url', sa.Text(), nullable=False),
    sa.Column('cancel_url', sa.Text(), nullable=False),
    sa.Column('refunds', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simulated_sessions')),
    sa.UniqueConstraint('payment_intent', name=op.f('uq_simulated_sessions_payment_intent'))
    )
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('product_type', sa.String(length=32), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_amount_cents', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('refunded_cents', sa.Integer(), nullable=False),
    sa.Column('credits_granted', sa.Integer(), nullable=False),
    sa.Column('credits_recovered', sa.Integer(), nullable=False),
    sa.Column('credits_unrecovered', sa.Integer(), nullable=False),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'paid', 'partly-refunded', 'refunded', 'disputed', 'expired', 'failed')", name=op.f('ck_orders_status')),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_orders_amount_positive')),
    sa.CheckConstraint('credits_recovered >= 0 AND credits_unrecovered >= 0', name=op.f('ck_orders_clawback_not_negative')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_orders_quantity_positive')),
    sa.CheckConstraint('refunded_cents >= 0 AND refunded_cents <= amount_cents', name=op.f('ck_orders_refunded_in_range')),
    sa.CheckConstraint('unit_amount_cents > 0', name=op.f('ck_orders_unit_amount_positive')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_orders_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_orders_checkout_session_id')),
    sa.UniqueConstraint('payment_intent_id', name=op.f('uq_orders_payment_intent_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_status'), ['status'], unique=False)
        batch_op.create_index('ix_orders_user_created', ['user_id', 'id'], unique=False)

    op.create_table('order_disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('provider_dispute_id', sa.String(length=255), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('credits_requested', sa.Integer(), nullable=False),
    sa.Column('credits_recovered', sa.Integer(), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('restored', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_order_disputes_amount_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_disputes_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_disputes')),
    sa.UniqueConstraint('provider_dispute_id', name=op.f('uq_order_disputes_provider_dispute_id'))
    )
    with op.batch_alter_table('order_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_disputes_order_id'), ['order_id'], unique=False)

    op.create_table('order_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('provider_refund_id', sa.String(length=255), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('credits_requested', sa.Integer(), nullable=False),
    sa.Column('credits_recovered', sa.Integer(), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_order_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['admin_id'], ['users.id'], name=op.f('fk_order_refunds_admin_id_users')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_refunds_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_refunds')),
    sa.UniqueConstraint('provider_refund_id', name=op.f('uq_order_refunds_provider_refund_id'))
    )
    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_refunds_order_id'), ['order_id'], unique=False)




def downgrade():
    
    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_refunds_order_id'))

    op.drop_table('order_refunds')
    with op.batch_alter_table('order_disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_disputes_order_id'))

    op.drop_table('order_disputes')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_user_created')
        batch_op.drop_index(batch_op.f('ix_orders_status'))

    op.drop_table('orders')
    op.drop_table('simulated_sessions')

