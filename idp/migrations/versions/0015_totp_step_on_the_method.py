"""The last time step an authenticator app's code was accepted for, on its method's row (it was a
key in the store: a store that lost its data let a code be used again)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mfa_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_step', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mfa_methods', schema=None) as batch_op:
        batch_op.drop_column('totp_step')
