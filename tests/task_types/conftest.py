"""Fixtures for the task-type tests: plain objects, no app, no Redis, no SQL."""
import pytest

from task_types.classify import ClassifyType


@pytest.fixture
def classify() -> ClassifyType:
    return ClassifyType()


@pytest.fixture
def config(classify: ClassifyType) -> dict:
    """The loaded config of classify's example: labels Deer, Fox, Badger, Nothing."""
    return classify.load_config(classify.example()["config"])
