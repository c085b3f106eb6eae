"""How a drain sizes its claims: short texts grow the batch, live traffic and long files keep it."""

from __future__ import annotations

from memsync.write.sync import ENCODE_SLICE, next_claim


def test_a_full_batch_of_short_texts_doubles_the_claim_up_to_a_slice_of_items() -> None:
    sizes = [64]
    for _ in range(5):  # turns: two texts an item
        sizes.append(next_claim(sizes[-1], sizes[-1], 2 * sizes[-1]))
    assert sizes == [64, 128, 128, 128, 128, 128]  # 128 items give a slice of texts: enough
    sizes = [64]
    for _ in range(5):  # one text an item (facts, reflections without goals)
        sizes.append(next_claim(sizes[-1], sizes[-1], sizes[-1]))
    assert sizes == [64, 128, 256, 256, 256, 256] and sizes[-1] == ENCODE_SLICE


def test_live_traffic_long_files_and_larger_settings_keep_the_size() -> None:
    assert next_claim(64, 3, 6) == 64  # the queue ran short: not a backlog
    assert next_claim(64, 64, 4_000) == 64  # docs files: one batch already fills slices
    assert next_claim(500, 500, 10) == 500  # a claim_batch set above a slice is never cut
    assert next_claim(64, 64, 0) == 128  # deletions embed nothing: they batch up too
