"""The Zep mirror (optional extra `zep`, client zep-python 2.x). Postgres stays the record;
Zep gets copies that map back to their rows (seed §2.2):

- client people (erp.people referenced as a session's client_person_id) -> Zep users,
  user_id = the person's global_id;
- agent.sessions -> Zep sessions, session_id = the session's global_id, metadata: global_id,
  subject, profile, recipe;
- notes and decisions (agent.events) and reflections written in a session -> messages of
  that session, metadata: global_id, entity_type, table, id.

What Zep's API (2.x) cannot take back: a message's text cannot be changed or removed, so an
edited note is added again and the old message is marked {"superseded": true}; a deleted one
is marked {"deleted": true}. Deleting a session deletes its memory; deleting a person deletes
the user. The client is built on the SDK's BaseClient with MEMSYNC_ZEP_URL: the `Zep` class
lets a ZEP_API_URL in the environment override the URL it is given."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from memsync.errors import ConfigError, IndexUnavailable, RowError
from memsync.settings import Settings
from memsync.storage.db import DictConn
from memsync.storage.db import mirror as q
from memsync.storage.db.audit import AUDIT_SESSION_TYPES
from memsync.storage.db.queue import Item

log = logging.getLogger("memsync.mirror.zep")
NAME = "zep"
API_SUFFIX = "api/v2"
MESSAGE_PAGE = 1000


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:32]


def _unchanged(held: Mapping[str, Any] | None, content_hash: str) -> bool:
    """The mirror already holds this very content for the row."""
    return held is not None and held["content_hash"] == content_hash and not held["deleted"]


def _meta(table: str, row: Mapping[str, Any], entity: str) -> dict[str, Any]:
    return {"global_id": row["global_id"], "entity_type": entity, "table": table, "id": row["id"]}


def reflection_text(r: Mapping[str, Any]) -> str:
    parts = [f"{r['mode'].capitalize()} reflection"]
    for key in ("goals", "accomplishments", "blockers", "decisions", "next_actions"):
        items = [i.get("text", i) if isinstance(i, dict) else i for i in (r.get(key) or [])]
        if items:
            parts.append(f"{key.replace('_', ' ').capitalize()}: " + "; ".join(map(str, items)))
    if r.get("raw_text"):
        parts.append(str(r["raw_text"]))
    return "\n".join(parts)


class ZepMirror:
    name = NAME

    def __init__(self, settings: Settings, client: Any = None):
        if client is None:
            if not settings.zep_url:
                raise ConfigError("MEMSYNC_ZEP_URL is not set (zep is in MEMSYNC_INDEXES)")
            try:
                from zep_python.base_client import BaseClient
            except ImportError as exc:
                raise ConfigError("the Zep mirror needs the `zep` extra: pip install 'memsync[zep]'") from exc
            # BaseClient, not Zep: Zep() replaces the URL with ZEP_API_URL from the environment
            client = BaseClient(base_url=f"{settings.zep_url.rstrip('/')}/{API_SUFFIX}",
                                api_key=settings.zep_api_key or "", timeout=settings.zep_timeout_seconds)
        self.client = client

    # ------------------------------------------------------------ health

    def probe(self) -> None:
        """Raise IndexUnavailable unless Zep answers (an outage defers, never dead-letters)."""
        try:
            self.client.user.list_ordered(page_size=1)
        except Exception as exc:
            raise IndexUnavailable(f"zep probe: {type(exc).__name__}: {exc}".strip()) from exc

    # ------------------------------------------------------------ apply one queued row

    def apply(self, conn: DictConn, item: Item) -> str:
        """Bring Zep in line with the row as it is now; returns what was done."""
        if item.source_id is None:  # mirror_queue.source_id is NOT NULL: only a truncate has none
            raise RowError(f"a {item.source_table} item without a row id")
        if item.source_table == "erp.people":
            return self._person(conn, item.source_id)
        if item.source_table == "agent.sessions":
            return self._session(conn, item.source_id)
        if item.source_table in ("agent.events", "agent.reflections"):
            return self._message(conn, item.source_table, item.source_id)
        raise RowError(f"the zep mirror does not hold {item.source_table} rows")

    def _not_found(self, exc: BaseException) -> bool:
        from zep_python.errors import NotFoundError

        return isinstance(exc, NotFoundError)

    def _found(self, call: Any, *args: Any, **kwargs: Any) -> bool:
        """Make a Zep call; False when Zep says the object does not exist (any other error raises)."""
        try:
            call(*args, **kwargs)
        except Exception as exc:
            if not self._not_found(exc):
                raise
            return False
        return True

    def _drop(self, conn: DictConn, table: str, row_id: int, held: Mapping[str, Any] | None, delete: Any,
              done: str) -> str:
        """The row is gone from Postgres: delete what the mirror holds for it (already gone is fine)."""
        if held is None or held["deleted"]:
            return "nothing to delete"
        self._found(delete, held["remote_id"])
        q.record(conn, NAME, table, row_id, held["remote_id"], None, deleted=True)
        return done

    def _person(self, conn: DictConn, person_id: int, *, client: bool = False) -> str:
        held = q.item(conn, NAME, "erp.people", person_id)
        p = q.person(conn, person_id)
        if p is None:
            return self._drop(conn, "erp.people", person_id, held, self.client.user.delete, "user deleted")
        if not (p["is_client"] or client or held is not None):
            return "not a client"
        first, _, last = str(p["full_name"]).partition(" ")
        fields = {"email": p["email"], "first_name": first, "last_name": last or None,
                  "metadata": _meta("erp.people", p, "person")}
        h = _hash(fields)
        if _unchanged(held, h):
            return "unchanged"
        given = {k: v for k, v in fields.items() if v is not None}
        if not self._found(self.client.user.update, p["global_id"], **given):
            self.client.user.add(user_id=p["global_id"], **given)
        q.record(conn, NAME, "erp.people", person_id, p["global_id"], h)
        return "user written"

    def _session(self, conn: DictConn, session_id: int) -> str:
        held = q.item(conn, NAME, "agent.sessions", session_id)
        s = q.session(conn, session_id)
        if s is None:
            return self._drop(conn, "agent.sessions", session_id, held, self.client.memory.delete,
                              "session memory deleted")
        if s["session_type"] in AUDIT_SESSION_TYPES:
            return "memsync's own audit session: not mirrored"
        user = None
        if s["client_person_id"] is not None:
            self._person(conn, int(s["client_person_id"]), client=True)
            user = s["client_global_id"]
        subject = f"{s['subject_type']}:{s['subject_id']}" if s["subject_type"] else None
        meta = {**_meta("agent.sessions", s, "session"), "subject": subject, "session_type": s["session_type"],
                "status": s["status"], "profile": s["profile_name"], "recipe": s["recipe_name"]}
        h = _hash(meta, user)
        if _unchanged(held, h):
            return "unchanged"
        if not self._found(self.client.memory.update_session, s["global_id"], metadata=meta):
            self.client.memory.add_session(session_id=s["global_id"], user_id=user, metadata=meta)
        q.record(conn, NAME, "agent.sessions", session_id, s["global_id"], h)
        return "session written"

    def _find_message(self, session: str, global_id: str) -> str | None:
        listing = self.client.memory.get_session_messages(session, limit=MESSAGE_PAGE)
        for m in listing.messages or []:
            if (m.metadata or {}).get("global_id") == global_id and not (m.metadata or {}).get("superseded"):
                return str(m.uuid_)
        return None

    def _mark(self, held: Mapping[str, Any], global_id: str, mark: dict[str, Any]) -> None:
        session = str(held["remote_id"]).split("#", 1)[0]
        uuid = self._find_message(session, global_id)
        if uuid is not None:
            self.client.memory.update_message_metadata(session, uuid, metadata={"global_id": global_id, **mark})

    def _message(self, conn: DictConn, table: str, row_id: int) -> str:
        held = q.item(conn, NAME, table, row_id)
        r = q.row(conn, table, row_id)
        if table == "agent.events":
            from memsync.kinds.events import SOURCE, text_of

            keep = r is not None and SOURCE.captures(r)  # notes and decisions that outlive a run
            text = text_of(r["payload"]) if r is not None else ""
            entity, role = "event", "assistant"
        else:
            keep = r is not None and r["session_id"] is not None
            text = reflection_text(r) if r is not None else ""
            entity, role = "reflection", "system"
        gid = held["remote_id"].split("#", 1)[1] if held is not None else (r["global_id"] if r else "")
        if not keep or r is None or not text.strip():
            if held is not None and not held["deleted"]:
                self._mark(held, gid, {"deleted": True})
                q.record(conn, NAME, table, row_id, held["remote_id"], None, deleted=True)
                return "message marked deleted"
            return "not mirrored (no session or no text)" if r is not None else "nothing to delete"
        session_row = q.session(conn, int(r["session_id"]))
        if session_row is None:
            return "session gone"
        if session_row["session_type"] in AUDIT_SESSION_TYPES:
            return "memsync's own audit record: not mirrored"
        self._session(conn, int(r["session_id"]))
        h = _hash(text, r.get("memory_scope"))
        if _unchanged(held, h):
            return "unchanged"
        if held is not None and not held["deleted"]:
            self._mark(held, r["global_id"], {"superseded": True})  # Zep cannot edit a message's text
        from zep_python.types import Message

        meta = {**_meta(table, r, entity), "memory_scope": r.get("memory_scope")}
        self.client.memory.add(session_row["global_id"], messages=[
            Message(role="memsync", role_type=role, content=text, metadata=meta)])
        q.record(conn, NAME, table, row_id, f"{session_row['global_id']}#{r['global_id']}", h)
        return "message added" if held is None else "message replaced"

    # ------------------------------------------------------------ facts back, and verify

    def pull(self, conn: DictConn, person_id: int | None = None) -> dict[str, int]:
        """Zep's extracted facts for mirrored users -> candidate agent.facts rows (source
        'zep', the Zep fact uuid and session in metadata), each uuid once."""
        seen = added = 0
        for it in q.items(conn, NAME):
            if it["source_table"] != "erp.people" or it["deleted"]:
                continue
            if person_id is not None and it["source_id"] != person_id:
                continue
            for group in self.client.user.get_sessions(it["remote_id"]) or []:
                for sess in group if isinstance(group, list) else [group]:
                    memory = self.client.memory.get(sess.session_id)
                    for fact in memory.relevant_facts or []:
                        seen += 1
                        added += q.insert_candidate_fact(conn, {
                            "content": fact.fact, "subject_type": "person", "subject_id": it["source_id"],
                            "confidence": fact.rating, "valid_from": _when(fact.created_at),
                            "metadata": {"source": "zep", "zep_fact_uuid": fact.uuid_, "zep_session": sess.session_id,
                                         "written_by": "memsync.zep_pull", "candidate": True}})
        return {"facts_seen": seen, "facts_added": added}

    def verify(self, conn: DictConn) -> dict[str, Any]:
        """What Postgres says Zep should hold against what Zep has."""
        held = {(i["source_table"], i["source_id"]): i for i in q.items(conn, NAME)}
        missing: list[str] = []
        lingering: list[str] = []
        messages: dict[str, set[str]] = {}

        def present(table: str, remote: str) -> bool:
            try:
                if table == "erp.people":
                    self.client.user.get(remote)
                elif table == "agent.sessions":
                    self.client.memory.get_session(remote)
                else:
                    session, gid = remote.split("#", 1)
                    if session not in messages:
                        listing = self.client.memory.get_session_messages(session, limit=MESSAGE_PAGE)
                        messages[session] = {str((m.metadata or {}).get("global_id")) for m in listing.messages or []
                                             if not (m.metadata or {}).get("deleted")
                                             and not (m.metadata or {}).get("superseded")}
                    return gid in messages[session]
                return True
            except Exception as exc:
                if self._not_found(exc):
                    return False
                raise

        expected = [(r["source_table"], int(r["source_id"])) for r in q.expected(conn)]
        for key in expected:
            it = held.get(key)
            if it is None or it["deleted"] or not present(key[0], it["remote_id"]):
                missing.append(f"{key[0]}#{key[1]}")
        wanted = set(expected)
        for key, it in held.items():
            if key not in wanted and not it["deleted"] and key[0] in ("erp.people", "agent.sessions") \
                    and present(key[0], it["remote_id"]):
                lingering.append(f"{key[0]}#{key[1]}")
        return {"expected": len(expected), "missing": missing, "lingering": lingering}


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
