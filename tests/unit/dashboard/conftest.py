from tests.unit.server.conftest import admin_key, make_client  # noqa: F401
