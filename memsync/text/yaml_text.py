"""YAML that people write (front matter, recipe files) read safely: one line of why when it
cannot be read, whatever the file holds."""

from __future__ import annotations

from typing import Any

import yaml


def read_yaml(text: str) -> Any:
    """`text` as YAML (safe_load: no Python objects). ValueError with one line of why. The
    parser raises more than YAMLError on hostile input: ValueError for an impossible date
    ('2023-02-30') or a bad '!!int', AttributeError for some '!!timestamp' values,
    RecursionError for deeply nested brackets; each is the file's own problem."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        why = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"a value the YAML reader cannot take: {why}") from None
