"""account versions and last sign-in; client services' descriptions and launch addresses

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('description_cy', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('initiate_login_uri', sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('initiate_login_uri')
        batch_op.drop_column('description_cy')
        batch_op.drop_column('description')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('last_sign_in_at')
