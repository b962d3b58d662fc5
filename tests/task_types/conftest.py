"""Fixtures for the task-type tests: plain objects, no app, no Redis, no SQL."""
import pytest

from task_types.classify import ClassifyType
from task_types.locate import LocateType
from task_types.transcribe import TranscribeType


@pytest.fixture
def classify() -> ClassifyType:
    return ClassifyType()


@pytest.fixture
def config(classify: ClassifyType) -> dict:
    """The loaded config of classify's example: labels Deer, Fox, Badger, Nothing."""
    return classify.load_config(classify.example()["config"])


# -- locate: one config per shape ---------------------------------------------

BOXES = {"question": "Mark every penguin"}
POINTS = {"question": "Tap every penguin", "shape": "point", "radius": 10}


@pytest.fixture
def locate() -> LocateType:
    return LocateType()


@pytest.fixture
def boxes(locate) -> dict:
    """The box config: every other key at its default."""
    return locate.load_config(BOXES)


@pytest.fixture
def points(locate) -> dict:
    return locate.load_config(POINTS)


@pytest.fixture
def transcribe() -> TranscribeType:
    return TranscribeType()
