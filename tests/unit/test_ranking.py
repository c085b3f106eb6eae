from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from memsync.errors import FilterError, RecipeError, SubjectError
from memsync.read.budget import SectionItems, fit
from memsync.read.fusion import Fused, apply_recency, mmr, ndcg, rrf, zscore
from memsync.read.recipes import parse_spec, render_query
from memsync.read.subjects import parse_ref
from memsync.storage.filters import Filters


def test_rrf_union_lets_a_keyword_only_hit_win() -> None:
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lexical = [(9, 12.0), (1, 3.0)]
    fused = rrf({"dense": dense, "lexical": lexical}, k=60)
    assert [f.block_id for f in fused][:2] == [1, 9]
    assert fused[1].signals == {"lexical": (1, 12.0)}
    # a keyword-only hit beats a block both signals rank low
    mixed = rrf({"dense": [(5, 0.9), (1, 0.8)], "lexical": [(9, 12.0), (5, 5.0)]}, k=60)
    assert [f.block_id for f in mixed] == [5, 9, 1]
    heavy = rrf({"dense": dense, "lexical": lexical}, k=60, weights={"dense": 0.2, "lexical": 1.0})
    assert heavy[0].block_id == 1 and heavy[0].score == pytest.approx(0.2 / 61 + 1 / 62)
    assert rrf({}, k=60) == []


def test_recency_decays_old_items() -> None:
    now = datetime.now(timezone.utc)
    items = [Fused(1, 1.0), Fused(2, 0.9)]
    out = apply_recency(items, {1: now - timedelta(days=60), 2: now}, now, half_life_days=7)
    assert [i.block_id for i in out] == [2, 1]


def test_mmr_prefers_diverse_results() -> None:
    v = {1: np.array([1.0, 0.0]), 2: np.array([0.999, 0.045]), 3: np.array([0.0, 1.0])}
    items = [Fused(1, 1.0), Fused(2, 0.99), Fused(3, 0.5)]
    q = np.array([1.0, 0.2])
    assert [i.block_id for i in mmr(items, v, q, 2, lam=0.3)] == [1, 3]
    assert [i.block_id for i in mmr(items, v, q, 2, lam=1.0)] == [1, 2]


def test_ndcg() -> None:
    assert ndcg(["a", "b"], {"a"}) == 1.0
    assert ndcg(["b", "a"], {"a"}) == pytest.approx(1 / np.log2(3))
    assert ndcg(["b", "c"], {"a"}) == 0.0


@dataclass
class It:
    name: str
    tokens: int


def test_budget_drops_lowest_priority_beyond_minimums_first() -> None:
    a = SectionItems("a", 1, 1, 10, None, [It("a1", 10), It("a2", 10)])
    b = SectionItems("b", 5, 1, 10, None, [It("b1", 10), It("b2", 10), It("b3", 10)])
    dropped = fit([a, b], 30)
    assert [i.name for i in a.items] == ["a1", "a2"] and [i.name for i in b.items] == ["b1"]
    assert [(d.section, d.item.name, d.reason) for d in dropped] == [("b", "b3", "budget"), ("b", "b2", "budget")]
    dropped = fit([a, b], 10)
    assert [i.name for i in a.items] == ["a1"] and b.items == []
    assert [d.reason for d in dropped] == ["budget", "budget (below min_items)"]


def test_budget_section_caps() -> None:
    s = SectionItems("s", 1, 0, 2, 15, [It("1", 10), It("2", 10), It("3", 1)])
    dropped = fit([s], 1000)
    assert [i.name for i in s.items] == ["1"]
    assert [d.reason for d in dropped] == ["section max_items", "section max_tokens"]


def test_recipe_validation_names_the_field() -> None:
    with pytest.raises(RecipeError, match=r"sections\.0\.records: erp\.tasks cannot be filtered on 'colour'"):
        parse_spec({"sections": [{"name": "t", "kind": "records", "relation": "erp.tasks", "where": {"colour": "x"}}]})
    with pytest.raises(RecipeError, match=r"where\.priority takes int values"):
        parse_spec({"sections": [{"name": "t", "kind": "records", "relation": "erp.tasks", "where": {"priority": "1"}}]})
    with pytest.raises(RecipeError, match="cannot be ordered by 'password'"):
        parse_spec({"sections": [{"name": "t", "kind": "records", "relation": "erp.people", "order_by": "password"}]})
    with pytest.raises(RecipeError, match=r"unknown placeholder \{subject\.secret\}"):
        parse_spec({"sections": [{"name": "s", "kind": "semantic", "query": "{subject.secret}"}]})
    with pytest.raises(RecipeError, match="section names must be unique"):
        parse_spec({"sections": [{"name": "s", "kind": "facts"}, {"name": "s", "kind": "goals"}]})
    with pytest.raises(RecipeError, match="min_items must not exceed max_items"):
        parse_spec({"sections": [{"name": "s", "kind": "facts", "min_items": 5, "max_items": 2}]})
    with pytest.raises(RecipeError, match="budget_tokens"):
        parse_spec({"budget_tokens": 3, "sections": [{"name": "s", "kind": "facts"}]})
    spec = parse_spec({"sections": [{"name": "s", "kind": "semantic", "weights": {"lexical": 2}}]})
    assert spec.scope == "tree" and spec.sections[0].kind == "semantic"


def test_render_query() -> None:
    assert render_query("{subject.name}  {query}", {"subject.name": "Portal", "query": ""}) == "Portal"


def test_subject_refs() -> None:
    assert parse_ref("project:42") == ("project", 42, None)
    assert parse_ref(("task", 7)) == ("task", 7, None)
    assert parse_ref("project:6f1d-uuid") == ("project", None, "project:6f1d-uuid")
    assert parse_ref("personal") == ("personal", None, None)
    for bad in ("Project:1", "42", "a b:1", ("task", "7")):
        with pytest.raises(SubjectError):
            parse_ref(bad)  # type: ignore[arg-type]


def test_filters_reject_unknown_fields() -> None:
    with pytest.raises(FilterError, match="colour"):
        Filters.parse({"colour": "red"})
    with pytest.raises(FilterError, match=r"not schema\.table"):
        Filters.parse({"source_tables": ["pg_authid"]})
    assert Filters.parse({"block_types": ["fact"]}).block_types == ("fact",)
    assert Filters().is_empty() and not Filters(scoped=True).is_empty()


def test_zscore_fusion_counts_how_far_ahead_a_candidate_is() -> None:
    # dense puts block 1 far ahead; lexical puts block 2 first by a hair over 3 and 1: rank
    # fusion picks 2 (ranks 1 + 2 beat 1 + 3), score fusion picks 1
    dense = [(1, 0.9), (2, 0.3), (3, 0.29), (4, 0.28)]
    lexical = [(2, 10.0), (3, 9.95), (1, 9.9), (4, 1.0)]
    assert rrf({"dense": dense, "lexical": lexical}, k=60)[0].block_id == 2
    fused = zscore({"dense": dense, "lexical": lexical})
    assert fused[0].block_id == 1 and fused[0].score == 1.0 and fused[-1].score == 0.0
    assert fused[0].signals == {"dense": (1, 0.9), "lexical": (3, 9.9)}
    # a candidate one signal did not return sits at that signal's floor, not its mean
    only_dense = zscore({"dense": [(1, 0.9), (2, 0.1)], "lexical": [(3, 5.0), (4, 1.0)]})
    assert {f.block_id for f in only_dense} == {1, 2, 3, 4}
    assert [f.block_id for f in only_dense][:2] in ([1, 3], [3, 1])
    # weights, one empty list, a list of equal scores: no division by zero
    assert zscore({"dense": [(1, 0.9), (2, 0.1)], "lexical": [(2, 9.0), (1, 1.0)]},
                  weights={"dense": 2.0, "lexical": 1.0})[0].block_id == 1
    assert [f.block_id for f in zscore({"dense": [(1, 0.5), (2, 0.5)], "lexical": []})] == [1, 2]
    assert zscore({}) == []
    # one signal found a single candidate: it still counts against what that signal missed
    lone = zscore({"dense": [(4, 0.9), (2, 0.85), (3, 0.2), (5, 0.1)], "lexical": [(2, 7.0)]})
    assert lone[0].block_id == 2


def test_zscore_reads_a_flat_head_against_the_signal_below_it() -> None:
    # dense's three best are near-ties; standardised over those three alone, block 1 looks
    # a deviation ahead of block 3 and wins; measured against the twenty the signal ranks
    # below them, the three stand out together and lexical's clear lead (block 3) decides
    dense = [(1, 0.50), (2, 0.49), (3, 0.48)]
    lexical = [(3, 12.0), (1, 6.0), (2, 5.9)]
    assert zscore({"dense": dense, "lexical": lexical})[0].block_id == 1
    deep = dense + [(10 + i, 0.1) for i in range(20)]
    fused = zscore({"dense": dense, "lexical": lexical}, background={"dense": deep})
    assert fused[0].block_id == 3
    # the background only measures: no candidate comes from it
    assert {f.block_id for f in fused} == {1, 2, 3}
