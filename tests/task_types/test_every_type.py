"""Every registered task type, built-in or not, runs the whole path on its own
example data: a new type is tested the moment its entry point exists."""
import json

import pytest

from task_types import Aggregate, Microtask, TaskResult, TaskTypeRegistry
from task_types.testing import MemoryMedia, template_environment

REGISTRY = TaskTypeRegistry.from_entry_points()


@pytest.mark.parametrize("task_type", list(REGISTRY), ids=REGISTRY.names())
def test_type_runs_split_validate_aggregate_combine(task_type):
    example = task_type.example()
    config = task_type.load_config(example["config"])
    item = task_type.item_schema(config).load(example["item"])

    microtasks = task_type.split(item, config, MemoryMedia(example.get("media")))
    assert microtasks and all(isinstance(task, Microtask) for task in microtasks)
    for task in microtasks:
        json.dumps(task.payload)  # payloads are stored in SQL and Redis as JSON

    answers = [task_type.answer_schema(config).load(answer) for answer in example["answers"]]
    results = [task_type.aggregate(answers, None, config) for _ in microtasks]
    assert all(isinstance(result, Aggregate) for result in results)
    assert all(0.0 <= result.confidence <= 1.0 for result in results)
    assert 0.0 <= task_type.score(answers[0], microtasks[0].gold) <= 1.0
    parts = [TaskResult(task.payload, result.value, result.confidence)
             for task, result in zip(microtasks, results, strict=True)]
    combined = task_type.combine(parts, item)
    assert isinstance(combined, Aggregate) and 0.0 <= combined.confidence <= 1.0
    json.dumps(combined.value)  # item results are exported as JSON

    # offline merging reads answers back from the text the type writes
    offline = task_type.offline_config()
    for result in results:
        text = task_type.value_to_text(result.value)
        assert isinstance(text, str)
        assert task_type.answer_schema(offline).load(task_type.answer_from_text(text, offline))
    for answer in answers:  # the raw answers export writes what consensus reads
        text = task_type.answer_to_text(answer)
        again = task_type.answer_schema(offline).load(task_type.answer_from_text(text, offline))
        assert task_type.answer_to_text(again) == text

    assert task_type.template.strip()
    html = template_environment().from_string(task_type.template).render(
        config=config
    )
    assert "<button" in html


def test_no_installed_type_is_unavailable():
    assert REGISTRY.unavailable == {}
