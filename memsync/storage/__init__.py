"""Storage: all SQL (db/), the migration runner, the embedded server, and the search
filter model the SQL and the indexes both apply."""
