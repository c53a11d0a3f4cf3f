"""Alembic environment: the engine comes from the caller (idp.migrations.upgrade)."""

from alembic import context

from idp.models import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    context.run_migrations()
