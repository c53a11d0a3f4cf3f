"""Whether the person has shown they read mail at their address (the ``email_verified`` claim):
true for accounts set up before this, false for invites not yet accepted

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute(sa.text("UPDATE accounts SET email_verified = false WHERE status = 'invited'"))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('email_verified')
