import pytest

from training.mixture import Mixture, collate_by_task


def test_mixture_interleaves_tasks_and_wraps_the_smaller_ones():
    mixture = Mixture([["a0", "a1", "a2"], ["b0"]])
    assert len(mixture) == 6
    assert [mixture[i] for i in range(6)] == ["a0", "b0", "a1", "b0", "a2", "b0"]


def test_mixture_refuses_empty_parts():
    with pytest.raises(ValueError, match="no empty"):
        Mixture([["a0"], []])


def test_collate_by_task_groups_in_order_of_first_appearance():
    items = [("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)]
    batch = collate_by_task(items, lambda item: item[0], lambda group: [v for _, v in group])
    assert batch.groups == ([1, 3], [2, 4], [5]) and len(batch) == 5
