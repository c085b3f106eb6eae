"""`memsync recipes ...`: list, show, validate, put."""

from __future__ import annotations

import json
from pathlib import Path

import click

from memsync.faces.cli.base import _app, emit, main, read_input
from memsync.read.recipes import RecipeFile


@main.group()
def recipes() -> None:
    """Context recipes: list, show, validate FILE, put FILE."""


def _read_recipe_file(path: Path) -> RecipeFile:
    from memsync.errors import RecipeError
    from memsync.read.recipes import recipe_file
    from memsync.text.yaml_text import read_yaml

    text = read_input(path, RecipeError)
    try:
        data = read_yaml(text)
    except ValueError as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc}") from None
    return recipe_file(data, str(path))


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def recipes_list(ctx: click.Context, as_json: bool) -> None:
    """Recipes (latest version of each)."""
    with _app(ctx) as app:
        rows = app.recipes()
    emit(rows, as_json, lambda rs: "\n".join(f"{r['name']:<22} v{r['version']}  {r['description'] or ''}" for r in rs))


@recipes.command("show")
@click.argument("name")
@click.pass_context
def recipes_show(ctx: click.Context, name: str) -> None:
    """Print a recipe (latest version) as JSON."""
    with _app(ctx) as app:
        row = app.recipe(name)
    click.echo(json.dumps({"name": row["name"], "version": row["version"], "description": row["description"],
                           "spec": row["retrieval_spec"]}, indent=2))


@recipes.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def recipes_validate(file: Path) -> None:
    """Check a recipe file (YAML or JSON with name, description, spec) without storing it."""

    spec = _read_recipe_file(file).spec
    click.echo(f"{file}: ok ({len(spec.sections)} sections, budget {spec.budget_tokens} tokens)")


@recipes.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def recipes_put(ctx: click.Context, file: Path) -> None:
    """Validate and store a recipe; a changed spec becomes a new version."""
    data = _read_recipe_file(file)
    with _app(ctx) as app:
        row, before = app.put_recipe(data)
    if before is not None and before["version"] != row["version"]:
        click.echo(f"{row['name']} v{row['version']} (replaces v{before['version']} for new retrievals; "
                   f"v{before['version']} stays readable as recipe id {before['id']})")
    elif before is not None:
        click.echo(f"{row['name']} v{row['version']} (unchanged)")
    else:
        click.echo(f"{row['name']} v{row['version']}")


