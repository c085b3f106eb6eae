"""DSNs as text: what a log line or an error may show of one."""

from __future__ import annotations

import re


def redact_dsn(dsn: str) -> str:
    """Hide the password in a URL or key=value DSN."""
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn)
