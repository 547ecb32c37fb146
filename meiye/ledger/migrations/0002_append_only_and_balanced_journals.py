"""Database enforcement of the ledger's rules, beyond the CHECK and UNIQUE constraints of 0001.

- ``ledger_journal`` and ``ledger_entry`` are append-only (UPDATE/DELETE refused by triggers).
- An entry's asset must equal its account's asset (BEFORE INSERT trigger, both databases), so the
  per-asset netting below cannot be fooled by a mislabelled entry.
- A journal's entries net to zero per asset. On PostgreSQL this is a DEFERRABLE INITIALLY DEFERRED
  constraint trigger: it runs at COMMIT, when all the journal's entries are in. SQLite has no
  deferred triggers, and an immediate one would refuse the first entry of every journal, so on SQLite
  this rule is enforced by ``meiye.ledger.services`` and checked afterwards by ``ledger_verify``.
"""

from typing import Any

from django.db import migrations

from meiye.core.immutable import append_only, drop_append_only

POSTGRESQL_FORWARDS = [
    """
    CREATE OR REPLACE FUNCTION ledger_entry_asset_matches_account() RETURNS trigger AS $$
    BEGIN
        IF NEW.asset IS DISTINCT FROM (SELECT asset FROM ledger_account WHERE id = NEW.account_id) THEN
            RAISE EXCEPTION 'ledger_entry: asset % differs from the asset of account %', NEW.asset, NEW.account_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    """,
    "DROP TRIGGER IF EXISTS ledger_entry_asset_matches_account ON ledger_entry;",
    "CREATE TRIGGER ledger_entry_asset_matches_account BEFORE INSERT ON ledger_entry "
    "FOR EACH ROW EXECUTE FUNCTION ledger_entry_asset_matches_account();",
    """
    CREATE OR REPLACE FUNCTION ledger_journal_nets_to_zero() RETURNS trigger AS $$
    DECLARE
        unbalanced record;
    BEGIN
        SELECT asset, SUM(amount) AS total INTO unbalanced
            FROM ledger_entry WHERE journal_id = NEW.journal_id
            GROUP BY asset HAVING SUM(amount) <> 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger journal % does not net to zero: % entries sum to %',
                NEW.journal_id, unbalanced.asset, unbalanced.total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql;
    """,
    "DROP TRIGGER IF EXISTS ledger_journal_nets_to_zero ON ledger_entry;",
    "CREATE CONSTRAINT TRIGGER ledger_journal_nets_to_zero AFTER INSERT ON ledger_entry "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_journal_nets_to_zero();",
]
POSTGRESQL_BACKWARDS = [
    "DROP TRIGGER IF EXISTS ledger_journal_nets_to_zero ON ledger_entry;",
    "DROP FUNCTION IF EXISTS ledger_journal_nets_to_zero();",
    "DROP TRIGGER IF EXISTS ledger_entry_asset_matches_account ON ledger_entry;",
    "DROP FUNCTION IF EXISTS ledger_entry_asset_matches_account();",
]
SQLITE_FORWARDS = [
    "DROP TRIGGER IF EXISTS ledger_entry_asset_matches_account;",
    "CREATE TRIGGER ledger_entry_asset_matches_account BEFORE INSERT ON ledger_entry "
    "WHEN NEW.asset IS NOT (SELECT asset FROM ledger_account WHERE id = NEW.account_id) "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entry: asset differs from its account''s asset'); END;",
]
SQLITE_BACKWARDS = ["DROP TRIGGER IF EXISTS ledger_entry_asset_matches_account;"]


def _run(statements_by_vendor: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        vendor = schema_editor.connection.vendor
        if vendor not in statements_by_vendor:
            raise NotImplementedError(f"ledger triggers are not written for {vendor}")
        for sql in statements_by_vendor[vendor]:
            schema_editor.execute(sql, None)  # no parameters: "%" in PL/pgSQL is not a placeholder

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_accounts_balances_journals_entries")]

    operations = [
        migrations.RunPython(
            append_only("ledger_journal", "ledger_entry"), drop_append_only("ledger_journal", "ledger_entry")
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL_FORWARDS, "sqlite": SQLITE_FORWARDS}),
            _run({"postgresql": POSTGRESQL_BACKWARDS, "sqlite": SQLITE_BACKWARDS}),
        ),
    ]
