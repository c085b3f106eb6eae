"""The package version (kept in step with pyproject.toml), apart from the package's lazy
facade so the modules that report it do not import that facade."""

__version__ = "0.1.0"
