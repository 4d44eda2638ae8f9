"""Alembic environment: uses the connection handed over by :mod:`db.migrate`, else the configured URL."""

from __future__ import annotations

from typing import Any

from alembic import context

from db.engine import begin_write, database_url, make_engine
from db.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite needs batch mode to alter tables; harmless on PostgreSQL
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL for ``alembic upgrade --sql``."""
    url = config.get_main_option("sqlalchemy.url") or database_url()
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection from ``config.attributes['connection']`` or a new engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or database_url())
    try:
        with begin_write(engine) as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
