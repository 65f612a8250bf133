"""Alembic environment: runs on the connection handed in by ``bot.store.migrate``.

For ``alembic revision --autogenerate`` during development it falls back to
``DESKBELL_ALEMBIC_URL`` (a synchronous URL, e.g. ``sqlite:///scratch.db``).
"""

import os

from alembic import context
from sqlalchemy import create_engine

from bot.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(os.environ["DESKBELL_ALEMBIC_URL"])
    with engine.begin() as conn:
        _run(conn)
