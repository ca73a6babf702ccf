"""Alembic environment: migrations run on a connection handed over by :mod:`suyuan.storage.db`."""

from __future__ import annotations

from alembic import context

from suyuan.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `suyuan init` / Database.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
