"""Alembic environment, revisions, and the frozen text of every procedure and view version."""
