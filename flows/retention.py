"""How long the warehouse keeps what it should not keep forever.

``ctl.quarantine`` holds each rejected source row whole, as JSON, so that someone can see what was wrong
with it; that content includes personal data (e-mails, phone numbers). After ``PMW_QUARANTINE_RETENTION_DAYS``
the content is purged (set to NULL) and only the reason, source, business key, run and time remain: enough to
count and explain rejections, nothing to leak.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def purge_quarantined_rows(warehouse: Engine, source_object: str, retention_days: int) -> int:
    """Drop the content of ``source_object``'s rows quarantined more than ``retention_days`` ago; returns how many
    were purged. Real time, not the run's as-of: retention is about how long the data was really kept."""
    with warehouse.begin() as conn:
        return conn.execute(
            sa.text(
                "UPDATE ctl.quarantine SET row_data = NULL "
                "WHERE source_object = :source AND row_data IS NOT NULL AND quarantined_at < :cutoff"
            ),
            {"source": source_object, "cutoff": datetime.now(UTC) - timedelta(days=retention_days)},
        ).rowcount
