"""courses: enrolments, seat counter

The live_key UNIQUE column is the "one live enrolment per learner and course" rule;
courses.seats_taken is the counter that enrolment takes atomically.

Revision ID: 0003_courses
Revises: 0002_payments
Create Date: 2026-12-04 21:09:07.078414

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_courses'
down_revision = '0002_payments'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('enrolments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('credits_spent', sa.Integer(), nullable=False),
    sa.Column('paid_by', sa.String(length=8), nullable=False),
    sa.Column('ledger_reference', sa.String(length=200), nullable=True),
    sa.Column('order_reference', sa.String(length=200), nullable=True),
    sa.Column('form_token', sa.String(length=64), nullable=True),
    sa.Column('live_key', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("paid_by IN ('credits', 'card')", name=op.f('ck_enrolments_paid_by')),
    sa.CheckConstraint('credits_spent >= 0', name=op.f('ck_enrolments_credits_not_negative')),
    sa.CheckConstraint('end_date > start_date', name=op.f('ck_enrolments_ends_after_start')),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'], name=op.f('fk_enrolments_course_id_courses')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_enrolments_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolments')),
    sa.UniqueConstraint('ledger_reference', name=op.f('uq_enrolments_ledger_reference')),
    sa.UniqueConstraint('live_key', name=op.f('uq_enrolments_live_key')),
    sa.UniqueConstraint('order_reference', name=op.f('uq_enrolments_order_reference')),
    sa.UniqueConstraint('user_id', 'form_token', name='uq_enrolments_user_form_token')
    )
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolments_course_id'), ['course_id'], unique=False)
        batch_op.create_index('ix_enrolments_user_created', ['user_id', 'created_at'], unique=False)

    with op.batch_alter_table('courses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seats_taken', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint(op.f('ck_courses_seats_taken_not_negative'), 'seats_taken >= 0')



def downgrade():
    with op.batch_alter_table('courses', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_courses_seats_taken_not_negative'), type_='check')
        batch_op.drop_column('seats_taken')

    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrolments_user_created')
        batch_op.drop_index(batch_op.f('ix_enrolments_course_id'))

    op.drop_table('enrolments')
