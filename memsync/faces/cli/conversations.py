"""`memsync import conversation`: chat history into sessions and events, with its real times."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from memsync.errors import MemsyncError
from memsync.faces.cli.base import _app, emit, main, read_input
from memsync.write import exports


@main.group("import")
def import_group() -> None:
    """Bring history in: conversations into sessions and their message events."""


@import_group.command("conversation")
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.File("rb"))
@click.option("--subject", metavar="TYPE:ID", help="Whom the conversations are about or with (e.g. person:3); "
              "their sessions and messages belong to that subject's tree.")
@click.option("--memory-scope", default="session", show_default=True,
              type=click.Choice(["session", "user", "project", "global", "run"]),
              help="The messages' memory_scope ('run' is not searchable later).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (and each session's result) as JSON.")
@click.pass_context
def import_conversation(ctx: click.Context, files: tuple[Any, ...], subject: str | None, memory_scope: str,
                        as_json: bool) -> None:
    """Import conversations from each FILE (JSON or JSON Lines; - reads stdin) as
    agent.sessions with their messages as `note` events, each stamped with when it was said.
    Several files (a project's session logs: ~/.claude/projects/-work-app/*.jsonl) are read
    one by one: one that cannot be read is named and the others go in.

    \b
    Shapes accepted:
      {"sessions": [{"id": "s1", "date": "2023-05-08T14:00:00Z",
                     "messages": [{"speaker": "Priya", "text": "...", "at": "...", "id": "m1"}, ...]}, ...]}
      a list of such sessions; {"messages": [...]} for one; a plain OpenAI-style
      list of {"role": "user", "content": "..."}; or a saved API request body
      ({"model", "system", "messages", "tools", ...}, or the Responses API's
      {"model", "instructions", "input"}): its system prompt is the first message,
      its other settings are left out; or a chat app's data export: ChatGPT's or
      Claude's conversations.json (each conversation a session, its title the
      summary; ChatGPT's shown branch of each conversation, and a message edited or an
      answer regenerated since an earlier import withdrawn; hidden system messages,
      custom instructions and the model's thoughts left out; chats with nothing said
      in them left out); or a coding agent's session log, JSON Lines as Claude Code
      (~/.claude/projects/*/*.jsonl) and Codex CLI (~/.codex/sessions/) keep them: each
      session id a session, its summary kept, a resumed Claude Code session (a new log
      holding the earlier turns) continuing the one imported before; file snapshots,
      meta notices, subagents' chats, context the agent logged as the user's
      (<environment_context>, a slash command's record) and the model's thinking left
      out; a log's last line still being written (no line end, not JSON yet) is left
      out and named, and the next import adds it.
    Chat logs are read as they are written: content as text or a list of parts
    (text kept, an image or file leaves a marker such as [image]), `name` as the
    speaker, an assistant's tool_calls (and Anthropic tool_use blocks) written out as
    'called NAME(ARGUMENTS)' and kept in the message's metadata, a tool's answer with
    its tool_call_id; the Responses API's message items, its tool calls
    (function_call, custom_tool_call, local_shell_call, web_search_call) and their
    outputs (reasoning items and thinking blocks are left out).
    A tool's answer longer than a message may be (100,000 characters) is cut to
    fit, with a marker saying how much was left out.
    A session may carry a `summary` and an `ended_at`; an imported session is completed.
    A message needs text (or content) and a speaker or role; `at` defaults to the session's
    date, `id` to one derived from its position and text. Times: ISO 8601, a Unix time, or
    as transcripts write them with the month in words or the year first ("1:56 pm on 8 May,
    2023", "May 8, 2023 14:05", "2023/05/20 (Sat) 02:21"; no zone means UTC); a message
    dated outside its session fails that session. A speaker is linked to the
    erp.people row it names when exactly one person has that full name (or, for one word,
    that first name); a message may name its own `person` ('person:3' or a global_id).
    One transaction per session: a
    malformed message fails its session (named by index and field), the others go in. A
    re-import adds nothing and says so. Exit code 1 when any session failed.
    """
    from tqdm import tqdm

    from memsync.write.conversations import sessions_of

    loaded: list[tuple[str, list[Any]]] = []  # file name, its sessions
    unreadable: list[dict[str, str]] = []
    partial: list[dict[str, Any]] = []  # a live log's last line, still being written
    for file in files:
        name = getattr(file, "name", "input")
        try:
            data, cut = _load(file, name)
            loaded.append((name, sessions_of(data)))
            if cut is not None:
                partial.append({"file": name, "line": cut})
        except (click.UsageError, MemsyncError) as exc:
            if len(files) == 1:  # the one file asked for: the command's own error
                raise
            unreadable.append({"file": name, "error": exc.format_message() if isinstance(exc, click.UsageError)
                               else str(exc)})
    results: list[dict[str, Any]] = []
    done: list[Any] = []
    with _app(ctx) as app:
        total = sum(len(sessions) for _, sessions in loaded)
        bar = tqdm(total=total, unit="session", disable=as_json or total < 20 or not sys.stderr.isatty(),
                   file=sys.stderr)
        def tick(_: Any) -> None:
            bar.update(1)

        for name, sessions in loaded:
            # the sessions read once (a session log's entries grouped here, not again in the import)
            these = app.import_conversations({"sessions": sessions}, subject=subject, memory_scope=memory_scope,
                                             progress=tick)
            done.extend(these)
            results.extend({**d.to_dict(), **({"file": name} if len(files) > 1 else {})} for d in these)
        bar.close()
    failed = [d for d in done if d.error]
    empty = sum(d.empty for d in done)
    summary = {"sessions": len(done) - empty, "created": sum(d.created for d in done),
               "added": sum(d.added for d in done), "skipped": sum(d.skipped for d in done),
               "failed": len(failed), "empty": empty, "withdrawn": sum(d.withdrawn for d in done),
               "partial_lines": partial, "results": results}
    if len(files) > 1:
        summary.update({"files": len(files), "unreadable": unreadable})
    emit(summary, as_json, _text)
    if failed or unreadable:
        ctx.exit(1)


def _load(file: Any, name: str) -> tuple[Any, int | None]:
    """A file's JSON value, or its objects when it is JSON Lines (a session log), with the
    number of a last line left out because it is still being written (exports.json_lines)."""
    text = read_input(file)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise click.UsageError(f"{name}: not JSON: {exc}") from None
        try:  # a session log: one JSON object per line
            return exports.json_lines(text)
        except ValueError as lines:
            raise click.UsageError(f"{name}: not JSON or JSON Lines: {lines}") from None


def _text(d: dict[str, Any]) -> str:
    lines = [f"error: {u['file']}: {u['error']}" for u in d.get("unreadable", [])]
    lines += [f"error: {r['file'] + ': ' if 'file' in r else ''}{r['error']}" for r in d["results"] if r["error"]]
    if d["added"] == 0 and not d["failed"]:
        lines.append(f"nothing new: all {d['skipped']} messages of {d['sessions']} sessions were imported before")
    else:
        lines.append(f"imported {d['added']} messages into {d['sessions'] - d['failed']} sessions "
                     f"({d['created']} new, {d['skipped']} messages already there, {d['failed']} sessions failed)")
    lines += [f"note: {p['file']}: line {p['line']} has no line end yet (the log is still being written): "
              "left out; import the file again to add it" for p in d["partial_lines"]]
    if d["withdrawn"]:
        lines.append(f"withdrew {d['withdrawn']} messages an earlier import brought in that the app no longer "
                     "shows (edited or regenerated since)")
    if d["empty"]:
        lines.append(f"{d['empty']} conversations of the export had nothing said in them: left out")
    return "\n".join(lines)
