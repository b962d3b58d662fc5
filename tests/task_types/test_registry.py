from importlib.metadata import EntryPoint

import pytest

from task_types import (
    DuplicateTaskTypeError,
    TaskType,
    TaskTypeRegistry,
    UnknownTaskTypeError,
)
from task_types import registry as registry_module
from task_types.classify import ClassifyType

GROUP = "bitesize.task_types"
CLASSIFY_EP = EntryPoint("classify", "task_types.classify:classify", GROUP)


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Make from_entry_points() see the given entry points instead of installed ones."""

    def install(*eps: EntryPoint) -> None:
        monkeypatch.setattr(registry_module, "entry_points", lambda group: list(eps))

    return install


def test_installed_entry_points_include_classify():
    registry = TaskTypeRegistry.from_entry_points()
    assert "classify" in registry
    assert "classify" in registry.names()
    assert isinstance(registry.get("classify"), TaskType)
    assert registry.get("classify") in list(registry)


def test_unknown_name_lists_installed_types():
    registry = TaskTypeRegistry([ClassifyType()])
    with pytest.raises(UnknownTaskTypeError) as exc:
        registry.get("colour")
    assert "'colour'" in exc.value.message
    assert "installed: classify" in exc.value.message
    assert exc.value.fields == {"task_type": [exc.value.message]}


def test_duplicate_objects_are_refused():
    with pytest.raises(DuplicateTaskTypeError, match="'classify' is defined twice"):
        TaskTypeRegistry([ClassifyType(), ClassifyType()])


def test_duplicate_entry_points_name_both(fake_entry_points):
    other = EntryPoint("classify", "acme_bitesize.pick:classify", GROUP)
    fake_entry_points(CLASSIFY_EP, other)
    with pytest.raises(DuplicateTaskTypeError) as exc:
        TaskTypeRegistry.from_entry_points()
    assert "task_types.classify:classify" in exc.value.message
    assert "acme_bitesize.pick:classify" in exc.value.message


def test_one_entry_point_seen_twice_is_not_a_duplicate(fake_entry_points):
    fake_entry_points(CLASSIFY_EP, CLASSIFY_EP)
    assert TaskTypeRegistry.from_entry_points().names() == ["classify"]


@pytest.mark.parametrize(
    ("entry_point", "reason"),
    [
        (EntryPoint("broken", "no_such_module_for_tests:thing", GROUP), "ModuleNotFoundError"),
        (EntryPoint("notatype", "os.path:join", GROUP), "not a TaskType"),
        (EntryPoint("renamed", "task_types.classify:classify", GROUP), "named 'classify'"),
    ],
    ids=["import-fails", "not-a-task-type", "name-mismatch"],
)
def test_broken_entry_point_is_unavailable(fake_entry_points, entry_point, reason):
    fake_entry_points(CLASSIFY_EP, entry_point)
    registry = TaskTypeRegistry.from_entry_points()
    assert registry.names() == ["classify"]
    assert reason in registry.unavailable[entry_point.name]
    with pytest.raises(UnknownTaskTypeError, match="installed but unavailable"):
        registry.get(entry_point.name)
