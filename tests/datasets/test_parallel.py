"""map_tasks: the same results, in task order, in this process and in spawned workers."""
from datasets.parallel import map_tasks


def test_workers_return_what_one_process_returns_in_task_order():
    tasks = [(7, 2), (9, 4), (5, 5), (100, 7)]
    expected = [divmod(*task) for task in tasks]
    assert list(map_tasks(divmod, tasks)) == expected
    assert list(map_tasks(divmod, tasks, workers=2)) == expected
    assert list(map_tasks(divmod, [], workers=2)) == []
