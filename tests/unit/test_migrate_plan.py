from pathlib import Path

import pytest

from memsync.errors import MigrationError
from memsync.storage.migrate import Migration, discover, migrations_dir, plan


def _m(name: str, checksum: str = "c") -> Migration:
    return Migration(name, Path(name), checksum)


def test_pending_in_order() -> None:
    files = [_m("0001_a.sql"), _m("0002_b.sql"), _m("0003_c.sql")]
    assert [m.name for m in plan(files, {"0001_a.sql": "c"})] == ["0002_b.sql", "0003_c.sql"]
    assert plan(files, {m.name: "c" for m in files}) == []


def test_changed_applied_file_is_refused() -> None:
    with pytest.raises(MigrationError, match="changed after it was applied"):
        plan([_m("0001_a.sql", "new")], {"0001_a.sql": "old"})


def test_missing_applied_file_is_refused() -> None:
    with pytest.raises(MigrationError, match="missing"):
        plan([_m("0002_b.sql")], {"0001_a.sql": "c"})


def test_new_file_numbered_before_applied_history_is_refused() -> None:
    with pytest.raises(MigrationError, match="renumber"):
        plan([_m("0001_a.sql"), _m("0002_b.sql"), _m("0003_c.sql")], {"0001_a.sql": "c", "0003_c.sql": "c"})


def test_discover_checks_names(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    assert [m.name for m in discover(tmp_path)] == ["0001_ok.sql"]
    (tmp_path / "bad name.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0001_name\.sql"):
        discover(tmp_path)


def test_shipped_migrations_are_well_formed() -> None:
    names = [m.name for m in discover(migrations_dir())]
    assert names[0] == "0001_schema_v0_1.sql"
