"""`pmw verify --against URL`, PostgreSQL against PostgreSQL: a second database on the test server stands in
for the user's SQL Server warehouse. With a difference planted in one table (a trigger of the test's own
that changes one service's rows as they are written), that table and what it feeds are reported different,
with their rows, and every other object equal (so verify invents no difference of its own: one such run
takes a minute, so there is no second, clean one). Keys numbered differently compare equal."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database, warehouse_at
from sqlalchemy.engine import URL

from flows import cli, embedded, migrate, verify

PLANTED = """
CREATE FUNCTION public.plant_difference() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.service_id = (SELECT min(service_id) FROM stg.services) THEN
        NEW.reviews_total := NEW.reviews_total + 1000;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER plant_difference BEFORE INSERT OR UPDATE ON fact.service_monthly
    FOR EACH ROW EXECUTE FUNCTION public.plant_difference();
"""


def _results(output: str) -> dict[str, str]:
    """object -> result, from the report's table."""
    rows = re.findall(r"^((?:dim|fact|brg|mart)\.\w+)\s+\d+\s+\d+\s+(.+)$", output, re.M)
    return dict(rows)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.slow
def test_verify_finds_a_difference_planted_in_one_table(
    server_admin_url: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the reference and the source go on the configured PostgreSQL server (here, the test server)
    monkeypatch.setenv("PMW_WAREHOUSE_URL", server_admin_url.render_as_string(hide_password=False))
    target = create_database(server_admin_url, prefix="pmw_verify_target")
    try:
        with warehouse_at(target):  # deployed ahead, as a DBA would with the offline script
            migrate.upgrade("head")
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(PLANTED)
        engine.dispose()
        # trust authentication ignores the password: it is there to show it is never printed
        against = target.set(password="pw-never-shown").render_as_string(hide_password=False)

        code = cli.main(["verify", "--against", against, "--days", "1"])
        output = capsys.readouterr().out
        assert code == 1, output
        results = _results(output)
        assert results["fact.service_monthly"].startswith("different"), output
        # what the planted table feeds differs with it: the project month sums its services' reviews
        fed_by_it = {"fact.project_monthly", "mart.service_financials", "mart.project_overview",
                     "mart.project_scorecard"}  # fmt: skip
        assert all(result == "equal" for name, result in results.items()
                   if name not in fed_by_it | {"fact.service_monthly"}), output  # fmt: skip
        assert {"dim.client", "fact.issue_daily", "brg.review_issue", "mart.issue_trend"} <= set(results)
        shown = re.search(r"^fact\.service_monthly \(.*?\):\n(.*?)(?:\n\n|\Z)", output, re.M | re.S)
        assert shown, output
        assert re.search(r"reference only: .*reviews_total=(\d{1,3}),", shown[1]), shown[1]
        assert re.search(r"target only: .*reviews_total=(1\d{3}),", shown[1]), shown[1]
        assert "pw-never-shown" not in output

        # the target now holds runs: a second verify refuses to write into it, naming what it needs
        assert cli.main(["verify", "--against", against]) == 2
        refused = capsys.readouterr()
        assert "an empty database" in refused.err + refused.out
        assert "pw-never-shown" not in refused.err + refused.out
    finally:
        drop_database(server_admin_url, target)
        for name in (verify.REFERENCE_DB, verify.SOURCE_DB):
            drop_database(server_admin_url, server_admin_url.set(database=name))


SMALL_WAREHOUSE = """
CREATE SCHEMA dim; CREATE SCHEMA fact;
CREATE TABLE dim.thing (thing_sk BIGINT PRIMARY KEY, name TEXT, valid_from DATE, row_hash TEXT);
CREATE TABLE fact.sale (thing_sk BIGINT, amount NUMERIC(10, 2));
"""


def test_surrogate_keys_compare_as_the_rows_they_point_to_and_row_hashes_not_at_all(server_admin_url: URL) -> None:
    # the same two versions of a thing, numbered the other way round and hashed differently, and a sale of each
    numbered = {
        "reference": "INSERT INTO dim.thing VALUES (1, 'a', '2026-01-01', 'x1'), (2, 'a', '2026-02-01', 'x2');"
                     "INSERT INTO fact.sale VALUES (1, 1.50), (2, 7);",
        "target": "INSERT INTO dim.thing VALUES (20, 'a', '2026-02-01', 'y'), (10, 'a', '2026-01-01', 'z');"
                  "INSERT INTO fact.sale VALUES (10, 1.5), (20, 7.00);",
    }  # fmt: skip
    urls = {side: create_database(server_admin_url, prefix=f"pmw_verify_{side}") for side in numbered}
    engines = {side: sa.create_engine(url, poolclass=sa.pool.NullPool) for side, url in urls.items()}
    try:
        for side, engine in engines.items():
            with engine.begin() as conn:
                conn.exec_driver_sql(SMALL_WAREHOUSE + numbered[side])
        assert all(c.equal for c in verify.compare(engines["reference"], engines["target"]))
        with engines["target"].begin() as conn:  # the later version's sale now points at the earlier version
            conn.exec_driver_sql("UPDATE fact.sale SET thing_sk = 10 WHERE thing_sk = 20")
        results = {c.name: c for c in verify.compare(engines["reference"], engines["target"])}
        assert results["dim.thing"].equal and not results["fact.sale"].equal
        assert results["fact.sale"].only_in_target == ["thing_sk=10, amount=7.00"]
    finally:
        for side, engine in engines.items():
            engine.dispose()
            drop_database(server_admin_url, urls[side])


def test_verify_against_sql_server_without_its_driver_says_what_to_install(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        import pyodbc  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ODBC is installed on this machine: the missing-driver message cannot be shown here")
    against = "mssql+pyodbc://etl:pw-never-shown@sqlhost/pmw_verify?driver=ODBC+Driver+18+for+SQL+Server"
    assert cli.main(["verify", "--against", against]) == 2
    printed = capsys.readouterr()
    message = printed.err + printed.out
    assert "setting --against" in message and "ODBC Driver 18" in message, message
    assert "pw-never-shown" not in message
    assert not embedded.data_dir(Path(os.environ["PMW_HOME"])).exists(), "a server started for an unreachable target"
