"""Freeze the current text of objects from ``procs/`` into a revision's ``migrations/sql`` folder.

Usage: ``python -m migrations.freeze <revision> <schema.object> [<schema.object> ...]``

Run it when you write a revision that creates or changes a procedure or view; commit the frozen
copies with the revision. The test suite checks that each ``procs/`` file equals its newest copy.
"""

from __future__ import annotations

import sys

from flows.database import SUPPORTED_DIALECTS, object_texts
from migrations.replaceable import frozen_path


def freeze(revision: str, qualified_name: str) -> list[str]:
    """Copy each dialect's current text of ``qualified_name`` (a portable one as that dialect creates it) to
    ``revision``'s frozen copy."""
    written = []
    for dialect in SUPPORTED_DIALECTS:
        text = object_texts(dialect).get(qualified_name)
        if text is None:
            print(f"note: no {dialect} text of {qualified_name} in procs/; no copy frozen (apply it with dialects=...)")
            continue
        target = frozen_path(dialect, qualified_name, revision)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(str(target))
    return written


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    for obj in sys.argv[2:]:
        for path in freeze(sys.argv[1], obj):
            print(path)
