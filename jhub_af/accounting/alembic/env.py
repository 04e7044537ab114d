"""Alembic environment for the af-accounting ledger (run through jhub_af.accounting.migrate)."""

from alembic import context

from jhub_af.accounting.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
