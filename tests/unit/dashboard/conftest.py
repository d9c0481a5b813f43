from tests.unit.server.conftest import admin_key, make_client, sqlite_store, store  # noqa: F401
