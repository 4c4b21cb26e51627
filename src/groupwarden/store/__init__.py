"""SQLAlchemy 2.0 models, engine and session setup, and Alembic migrations."""
