"""The vector size read from a sentence-transformers folder without loading the model: only
where the pipeline states it plainly (transformer, one pooling mode, optional normalisation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsync.embed import stated_dim


def folder(tmp_path: Path, modules: list[str], pooling: dict[str, object]) -> Path:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps(
        [{"idx": i, "path": "1_Pooling" if m == "Pooling" else "", "type": f"sentence_transformers.models.{m}"}
         for i, m in enumerate(modules)]))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return tmp_path


@pytest.mark.parametrize(("modules", "pooling", "dim"), [
    (["Transformer", "Pooling", "Normalize"], {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}, 384),
    (["Transformer", "Pooling"], {"word_embedding_dimension": 768, "pooling_mode": "cls"}, 768),
    # two modes are concatenated: twice the width, not stated plainly
    (["Transformer", "Pooling"], {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True,
                                  "pooling_mode_max_tokens": True}, None),
    (["Transformer", "Pooling", "Dense", "Normalize"], {"word_embedding_dimension": 384,
                                                        "pooling_mode_mean_tokens": True}, None),
    (["Transformer", "Pooling"], {"pooling_mode_mean_tokens": True}, None),
])
def test_only_a_plain_pipeline_states_its_size(tmp_path: Path, modules: list[str], pooling: dict[str, object],
                                               dim: int | None) -> None:
    assert stated_dim(folder(tmp_path, modules, pooling)) == dim


def test_a_folder_without_the_files_states_nothing(tmp_path: Path) -> None:
    assert stated_dim(tmp_path) is None
    (tmp_path / "modules.json").write_text("{not json")
    assert stated_dim(tmp_path) is None
