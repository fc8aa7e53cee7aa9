"""The trail's schema versions (alembic), applied by ``verifier audit migrate`` or when the service starts."""
