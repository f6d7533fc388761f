"""The warehouse's least-privilege database roles (created by revision 0013, in both dialects).

* reader: ``SELECT`` on the ``mart`` views only: what BI tools connect as;
* analyst: ``SELECT`` on ``dim``, ``fact``, ``brg`` and ``mart`` (no staging, no control tables): what
  quality checks run as, and what an analyst writing SQL gets;
* loader: what a run needs (read and write staging, dimensions, facts, bridges and ``ctl``; execute the
  procedures), and nothing else: no DDL, no other database.
"""

from __future__ import annotations

ROLE_NAMES: dict[str, str] = {"reader": "pmw_reader", "analyst": "pmw_analyst", "loader": "pmw_loader"}
CHECK_ROLE = ROLE_NAMES["analyst"]
