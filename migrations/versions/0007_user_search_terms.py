"""auth: the words users are found by in the admin filter (word-prefix search)

Revision ID: 0007_user_search_terms
Revises: 0006_refund_failed
Create Date: 2026-12-07 10:00:00

"""
import re

from alembic import op
import sqlalchemy as sa


revision = '0007_user_search_terms'
down_revision = '0006_refund_failed'
branch_labels = None
depends_on = None

# As storefront.auth.search at the time of writing (a migration does not follow later code).
WORD = re.compile(r"\w+")
TERM = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")
BATCH = 2000


def _terms(display_name, email):
    found = []
    for text in (display_name, email):
        for word in WORD.findall((text or "").lower()):
            word = word[:64]
            if word not in found:
                found.append(word)
    return found[:32]


def upgrade():
    terms = op.create_table(
        'user_search_terms',
        sa.Column('term', TERM, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_search_terms_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('term', 'user_id', name=op.f('pk_user_search_terms')),
    )
    with op.batch_alter_table('user_search_terms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_search_terms_user_id'), ['user_id'], unique=False)

    conn = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('display_name', sa.String),
                     sa.column('email', sa.String))
    last = 0
    while True:
        rows = conn.execute(sa.select(users.c.id, users.c.display_name, users.c.email)
                            .where(users.c.id > last).order_by(users.c.id).limit(BATCH)).all()
        if not rows:
            break
        values = [{"term": t, "user_id": r.id} for r in rows for t in _terms(r.display_name, r.email)]
        if values:
            conn.execute(terms.insert(), values)
        last = rows[-1].id


def downgrade():
    with op.batch_alter_table('user_search_terms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_search_terms_user_id'))
    op.drop_table('user_search_terms')
