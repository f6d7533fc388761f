"""The warehouse's least-privilege database roles (created by revision 0013, in both dialects).

* reader: ``SELECT`` on the ``mart`` views only: what BI tools connect as;
* analyst: ``SELECT`` on ``dim``, ``fact``, ``brg`` and ``mart`` (no staging, no control tables but those
  in ANALYST_CONTROL_TABLES): what quality checks run as, and what an analyst writing SQL gets;
* loader: what a run needs (read and write staging, dimensions, facts, bridges and ``ctl``; execute the
  procedures), and nothing else: no DDL, no other database.
"""

from __future__ import annotations

ROLE_NAMES: dict[str, str] = {"reader": "pmw_reader", "analyst": "pmw_analyst", "loader": "pmw_loader"}
CHECK_ROLE = ROLE_NAMES["analyst"]
# The control tables a check must read, granted to the analyst one by one (revision 0017): keys and times,
# no row contents, no watermark, nothing personal.
ANALYST_CONTROL_TABLES = ("ctl.local_time_resolution",)
# SQL Server: a user without login in the analyst role (revision 0013), whom the quality checks impersonate
MSSQL_CHECK_USER = "pmw_check"
