"""Least-privilege roles, and procedures that carry their own search_path.

Why (issue #12): no role or grant existed, so everything (pmw, BI tools through ``pmw db url``, the
quality checks) ran as the superuser: staging e-mails were readable and ``DELETE FROM fact.issue_daily``
succeeded. Three roles now exist in both dialects (``flows/roles.py``):

* ``pmw_reader``: ``SELECT`` on ``mart`` only, for BI tools;
* ``pmw_analyst``: ``SELECT`` on ``dim``, ``fact``, ``brg`` and ``mart`` (no ``stg``, no ``ctl``); the
  quality checks run as it;
* ``pmw_loader``: what a run needs: read and write ``stg``, ``dim``, ``fact``, ``brg`` and ``ctl``
  (``TRUNCATE`` and, on PostgreSQL 17+, ``MAINTAIN`` for the loaders' ``ANALYZE``), execute the
  procedures, read ``mart`` and the revision table; a member of the analyst so that its checks can take
  that role. No DDL.

On PostgreSQL roles belong to the server, not the database: they are created when missing (another
warehouse database on the same server may have them already) as ``LOGIN`` roles without a password (the
embedded server trusts local connections; elsewhere a DBA gives them passwords), and tables, views and
sequences created later by the migrating role get the same grants (default privileges). ``EXECUTE`` on
the procedures is revoked from ``PUBLIC``. On SQL Server they are database roles, schema grants cover
later objects, and the checks impersonate ``pmw_check``, a user without login in the analyst role (a
DBA maps logins to the roles: README "Access").

Every PostgreSQL procedure also gets ``SET search_path = pg_catalog, pg_temp``: with ``dim`` ahead of
``pg_catalog`` in a session's search_path, ``dim.date``'s row type shadowed the type ``date`` and
``load_dim_date`` failed. Their bodies are otherwise unchanged (all names are schema-qualified).
SQL Server resolves names in a procedure by the procedure's schema and the qualified names it uses, so
its procedures are unchanged. ``warehouse.normalize_priority`` keeps no SET clause: it is an inlined SQL
function, a SET clause would stop the inlining (5 s per million rows), and it runs inside the procedures'
search_path.

Risk: ``CREATE ROLE`` needs the migrating user to have ``CREATEROLE`` (PostgreSQL) or ``ALTER ANY ROLE``
(SQL Server). Downgrade revokes every grant of this revision in this database and drops the roles where no
other database still uses them (PostgreSQL keeps a role another warehouse database grants to).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from migrations.replaceable import apply_version, revert_version, run_as_is

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

PROCEDURES = tuple(
    f"warehouse.{name}"
    for name in (
        "add_inferred_members", "load_brg_issue_category", "load_brg_review_issue", "load_dim_app_user",
        "load_dim_client", "load_dim_date", "load_dim_issue", "load_dim_issue_analytics", "load_dim_issue_category",
        "load_dim_priority_map", "load_dim_project", "load_dim_project_type", "load_dim_review", "load_dim_service",
        "load_dim_status_map", "load_fact_issue_daily", "load_fact_issue_event", "load_fact_project_monthly",
        "load_fact_review", "load_fact_review_event", "load_fact_service_monthly", "merge_scd2", "prepare_incoming",
    )
)  # fmt: skip
ROLES = ("pmw_reader", "pmw_analyst", "pmw_loader")
READ = {"pmw_reader": ("mart",), "pmw_analyst": ("dim", "fact", "brg", "mart"), "pmw_loader": ("mart",)}
LOADED = ("stg", "dim", "fact", "brg", "ctl")  # the schemas a run writes
CHECK_USER = "pmw_check"  # SQL Server: impersonated by the checks (flows/roles.py MSSQL_CHECK_USER)


def _postgresql_grants(verb: str) -> str:
    """GRANT (or REVOKE) every privilege of this revision, and the same default privileges for later objects."""
    to = "TO" if verb == "GRANT" else "FROM"
    lines = []
    for role, schemas in READ.items():
        listed = ", ".join(schemas)
        lines += [f"{verb} USAGE ON SCHEMA {listed} {to} {role};",
                  f"{verb} SELECT ON ALL TABLES IN SCHEMA {listed} {to} {role};"]  # fmt: skip
        lines += [f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} {verb} SELECT ON TABLES {to} {role};" for s in schemas]
    loaded = ", ".join(LOADED)
    lines += [
        f"{verb} USAGE ON SCHEMA {loaded}, warehouse {to} pmw_loader;",
        f"{verb} SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {loaded} {to} pmw_loader;",
        f"{verb} USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {loaded} {to} pmw_loader;",
        f"{verb} EXECUTE ON ALL ROUTINES IN SCHEMA warehouse {to} pmw_loader;",
        f"{verb} SELECT ON public.alembic_version {to} pmw_loader;",  # a run checks the warehouse's revision
    ]
    for schema in LOADED:
        lines += [
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} {verb} SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES "
            f"{to} pmw_loader;",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} {verb} USAGE, SELECT, UPDATE ON SEQUENCES {to} pmw_loader;",
        ]
    lines.append(f"ALTER DEFAULT PRIVILEGES IN SCHEMA warehouse {verb} EXECUTE ON ROUTINES {to} pmw_loader;")
    # ANALYZE of a table one does not own needs MAINTAIN (PostgreSQL 17+); before 17 it is skipped with a warning
    maintain = f"{verb} MAINTAIN ON ALL TABLES IN SCHEMA {loaded} {to} pmw_loader"
    version = "current_setting('server_version_num')::int"
    lines.append(f"DO $$ BEGIN IF {version} >= 170000 THEN EXECUTE '{maintain}'; END IF; END $$;")
    return "\n".join(lines)


POSTGRESQL_ROLES = "\n".join(
    [
        *(
            f"DO $$ BEGIN CREATE ROLE {role} LOGIN; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"  # another database made it
            for role in ROLES
        ),
        "GRANT pmw_analyst TO pmw_loader;",  # its quality checks SET ROLE pmw_analyst
        "REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA warehouse FROM PUBLIC;",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA warehouse REVOKE EXECUTE ON ROUTINES FROM PUBLIC;",
    ]
)
POSTGRESQL_DROP_ROLES = "\n".join(
    [
        "ALTER DEFAULT PRIVILEGES IN SCHEMA warehouse GRANT EXECUTE ON ROUTINES TO PUBLIC;",
        "GRANT EXECUTE ON ALL ROUTINES IN SCHEMA warehouse TO PUBLIC;",
        *(
            # a role another warehouse database on this server still grants to stays
            f"DO $$ BEGIN DROP ROLE IF EXISTS {role}; "
            "EXCEPTION WHEN dependent_objects_still_exist THEN RAISE NOTICE "
            f"'role {role} kept: another database still grants it privileges'; END $$;"
            for role in reversed(ROLES)
        ),
    ]
)


def _mssql_grants(verb: str) -> str:
    to = "TO" if verb == "GRANT" else "FROM"
    lines = [f"{verb} SELECT ON SCHEMA::{schema} {to} {role};" for role, schemas in READ.items() for schema in schemas]
    for schema in LOADED:
        # ALTER: TRUNCATE TABLE and UPDATE STATISTICS need it on SQL Server
        lines.append(f"{verb} SELECT, INSERT, UPDATE, DELETE, ALTER ON SCHEMA::{schema} {to} pmw_loader;")
    lines += [
        f"{verb} EXECUTE ON SCHEMA::warehouse {to} pmw_loader;",
        f"{verb} SELECT ON OBJECT::dbo.alembic_version {to} pmw_loader;",
        f"{verb} IMPERSONATE ON USER::{CHECK_USER} {to} pmw_loader;",
    ]
    return "\n".join(lines)


MSSQL_ROLES = "\n".join(
    [
        *(f"IF DATABASE_PRINCIPAL_ID(N'{role}') IS NULL CREATE ROLE {role};" for role in ROLES),
        f"IF DATABASE_PRINCIPAL_ID(N'{CHECK_USER}') IS NULL CREATE USER {CHECK_USER} WITHOUT LOGIN;",
        f"ALTER ROLE pmw_analyst ADD MEMBER {CHECK_USER};",
    ]
)
MSSQL_DROP_ROLES = "\n".join(
    [
        f"ALTER ROLE pmw_analyst DROP MEMBER {CHECK_USER};",
        f"DROP USER IF EXISTS {CHECK_USER};",
        *(f"DROP ROLE IF EXISTS {role};" for role in reversed(ROLES)),
    ]
)


def _dialect() -> str:
    return str(op.get_context().dialect.name)


def upgrade() -> None:
    for qualified in PROCEDURES:
        apply_version(qualified, revision, dialects=("postgresql",))
    if _dialect() == "postgresql":
        run_as_is(POSTGRESQL_ROLES)
        run_as_is(_postgresql_grants("GRANT"))
    else:
        run_as_is(MSSQL_ROLES)
        run_as_is(_mssql_grants("GRANT"))


def downgrade() -> None:
    if _dialect() == "postgresql":
        run_as_is(_postgresql_grants("REVOKE"))
        # (membership is server-wide: it goes with the roles, and stays while another database keeps them)
        run_as_is(POSTGRESQL_DROP_ROLES)
    else:
        run_as_is(_mssql_grants("REVOKE"))
        run_as_is(MSSQL_DROP_ROLES)
    for qualified in PROCEDURES:
        revert_version(qualified, revision, kind="procedure", dialects=("postgresql",))
