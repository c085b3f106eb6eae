"""Subjects: what a retrieval is about. A reference is a (type, id) pair, a "type:id"
string, or a global_id ("project:<uuid>"). Types come from agent.subject_types."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from memsync.errors import ScopeError, SubjectError
from memsync.storage.db import DictConn
from memsync.storage.db import subjects as q

SubjectRef = tuple[str, int] | tuple[str, None] | str
NAME_FIELDS = ("name", "full_name", "title", "objective")


@dataclass(frozen=True)
class Subject:
    type: str
    id: int | None
    row: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.type}:{self.id}" if self.id is not None else self.type

    @property
    def name(self) -> str:
        for f in NAME_FIELDS:
            if self.row.get(f):
                return str(self.row[f])
        return self.key

    @property
    def global_id(self) -> str | None:
        gid = self.row.get("global_id")
        return str(gid) if gid else None


def parse_ref(ref: SubjectRef) -> tuple[str, int | None, str | None]:
    """-> (type, id, global_id); pure."""
    if isinstance(ref, tuple):
        if len(ref) != 2 or not isinstance(ref[0], str):
            raise SubjectError(f"subject {ref!r} must be a (type, id) pair")
        if ref[1] is not None and (not isinstance(ref[1], int) or isinstance(ref[1], bool)):
            raise SubjectError(f"subject id {ref[1]!r} must be an integer")
        return ref[0], ref[1], None
    text = str(ref).strip()
    if "\x00" in text:
        raise SubjectError("subject must not contain NUL characters")
    kind, sep, rest = text.partition(":")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", kind):
        raise SubjectError(f"subject {text[:80]!r} must look like 'project:42' or a global_id")
    if not sep:
        return kind, None, None  # e.g. 'personal'
    try:
        sid = id_part(rest)
    except ValueError as exc:
        raise SubjectError(f"subject {text[:80]!r}: {exc}") from None
    return (kind, sid, None) if sid is not None else (kind, None, text)


def id_part(rest: str) -> int | None:
    """The id after 'type:' in a reference: 42 for '42' (ASCII digits, at most 18), None
    where it is no number at all (a global_id). '-1', '٣', '²' (str.isdigit() takes them)
    and longer runs of digits raise ValueError saying what is wrong. Pure."""
    if re.fullmatch(r"[0-9]+", rest):
        if len(rest) > 18:
            raise ValueError("the id is out of range")
        return int(rest)
    if re.fullmatch(r"-?\d+", rest) or rest.isdigit():
        raise ValueError("an id is a positive whole number in ASCII digits")
    return None


def resolve(conn: DictConn, ref: SubjectRef) -> Subject:
    kind, sid, gid = parse_ref(ref)
    kinds = q.subject_types(conn)
    if kind not in kinds:
        raise SubjectError(f"unknown subject type {kind!r}; known: {', '.join(sorted(kinds))}")
    if kinds[kind] is None:  # 'personal': no ERP row behind it
        return Subject(kind, None, {})
    if sid is None and gid is None:
        raise SubjectError(f"subject {kind!r} needs an id: '{kind}:42' or a global_id")
    row = q.load(conn, kind, id=sid, global_id=gid)
    if row is None:
        raise SubjectError(f"no {kind} with {'id ' + str(sid) if sid is not None else 'global_id ' + str(gid)}")
    return Subject(kind, int(row["id"]), dict(row))


def scope(conn: DictConn, subject: Subject, mode: str) -> tuple[tuple[str, int | None], ...]:
    """The subject alone, or the subject and its tree."""
    pairs: list[tuple[str, int | None]] = [(subject.type, subject.id)]
    if mode == "tree" and subject.id is not None:
        pairs.extend(q.tree(conn, subject.type, subject.id))
    return tuple(dict.fromkeys(pairs))


@dataclass(frozen=True)
class Confinement:
    """A subject and its tree: everything a scoped face (memsync mcp --scope) may read or
    write. Rows with no subject, or with the user's own 'personal' subject, are outside."""

    subject: Subject
    pairs: frozenset[tuple[str, int | None]]

    @classmethod
    def of(cls, conn: DictConn, ref: SubjectRef) -> Confinement:
        subj = resolve(conn, ref)
        return cls(subj, frozenset(scope(conn, subj, "tree")))

    def allows(self, subject_type: str | None, subject_id: int | None) -> bool:
        return subject_type is not None and (subject_type, subject_id) in self.pairs

    def check(self, subject_type: str | None, subject_id: int | None, what: str) -> None:
        if not self.allows(subject_type, subject_id):
            raise ScopeError(f"{what} is outside this server's scope ({self.subject.key} and its tree)")

    def narrow(self, pairs: tuple[tuple[str, int | None], ...]) -> tuple[tuple[str, int | None], ...]:
        return tuple(p for p in pairs if p in self.pairs)
