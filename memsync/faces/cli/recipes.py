"""`memsync recipes ...`: list, show, validate, put."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from memsync.errors import MemsyncError
from memsync.faces.cli.base import _settings, emit, main

if TYPE_CHECKING:
    pass

@main.group()
def recipes() -> None:
    """Context recipes: list, show, validate FILE, put FILE."""


def _read_recipe_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MemsyncError(f"{path}: cannot read recipe: {exc}") from None
    if not isinstance(data, dict) or "name" not in data or "spec" not in data:
        raise MemsyncError(f"{path}: a recipe file needs 'name', 'spec' and optionally 'description'")
    return data


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def recipes_list(ctx: click.Context, as_json: bool) -> None:
    """Recipes (latest version of each)."""
    from memsync.runtime import resolve_dsn
    from memsync.storage.db import connect
    from memsync.storage.db import context as q

    with connect(resolve_dsn(_settings(ctx)), autocommit=True) as conn:
        rows = q.recipes(conn)
    emit(rows, as_json, lambda rs: "\n".join(f"{r['name']:<22} v{r['version']}  {r['description'] or ''}" for r in rs))


@recipes.command("show")
@click.argument("name")
@click.pass_context
def recipes_show(ctx: click.Context, name: str) -> None:
    """Print a recipe (latest version) as JSON."""
    from memsync.read.recipes import RecipeError
    from memsync.runtime import resolve_dsn
    from memsync.storage.db import connect
    from memsync.storage.db import context as q

    with connect(resolve_dsn(_settings(ctx)), autocommit=True) as conn:
        row = q.recipe(conn, name=name)
    if row is None:
        raise RecipeError(f"unknown recipe {name!r}")
    click.echo(json.dumps({"name": row["name"], "version": row["version"], "description": row["description"],
                           "spec": row["retrieval_spec"]}, indent=2))


@recipes.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def recipes_validate(file: Path) -> None:
    """Check a recipe file (YAML or JSON with name, description, spec) without storing it."""
    from memsync.read.recipes import parse_spec

    data = _read_recipe_file(file)
    spec = parse_spec(data["spec"], f"{file}")
    click.echo(f"{file}: ok ({len(spec.sections)} sections, budget {spec.budget_tokens} tokens)")


@recipes.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def recipes_put(ctx: click.Context, file: Path) -> None:
    """Validate and store a recipe; a changed spec becomes a new version."""
    from memsync.read.recipes import parse_spec
    from memsync.runtime import resolve_dsn
    from memsync.storage.db import connect
    from memsync.storage.db import context as q

    data = _read_recipe_file(file)
    parse_spec(data["spec"], f"{file}")
    with connect(resolve_dsn(_settings(ctx)), autocommit=True) as conn:
        row = q.put_recipe(conn, str(data["name"]), data.get("description"), data["spec"])
    click.echo(f"{row['name']} v{row['version']}")


