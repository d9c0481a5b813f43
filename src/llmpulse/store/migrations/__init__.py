"""Alembic migrations of the llmpulse store, shipped inside the package.

Applied by ``Store.open(url, migrate=True)`` and by ``llmpulse db upgrade``. To write a new
revision (one per schema change)::

    alembic -c src/llmpulse/store/migrations/alembic.ini revision -m "what changed"
"""
