"""number without a config: the scale read off the answers (detected_scale), and
the plain mean a rating scale merges by (issue 15, item 5)."""
import pytest

from task_types.number import NumberType, detected_scale


@pytest.fixture
def number() -> NumberType:
    return NumberType()


def values(*numbers: float) -> list[dict]:
    return [{"value": n} for n in numbers]


def scale_of(found: dict) -> tuple:
    return found["min"], found["max"], found["integer"], found["method"]


@pytest.mark.parametrize(("tasks", "scale"), [
    # a 0..100 rating: 100 answered on two tasks is the scale's end
    ([[0, 100, 50], [100, 20], [10]], (0.0, 100, False, "mean")),
    # any negative value: a signed scale, as wide on both sides
    ([[-100, 0], [100, 40], [-20]], (-100, 100, False, "mean")),
    ([[-100, 5], [-100, 3]], (-100, 100, False, "mean")),
    ([[-100, 100, 20], [40, 0]], (-100, 100, False, "mean")),  # both ends, on one task
    ([[100, 100, 20], [40, 0]], (0.0, None, True, "median")),  # one task's top: a count
    # 0..100 and -100..100 ratings in one file: the signed scale holds them all
    ([[80, -40, 76], [10, -90, 100], [0, -1, 100]], (-100, 100, False, "mean")),
    # a 1..5 scale of whole ratings: their mean is not rounded
    ([[1, 5, 4], [5, 5, 2], [3]], (0.0, 5, False, "mean")),
    # a count whose top is one slip: open above, whole numbers, the median
    ([[12, 11, 12, 120], [3, 3, 4]], (0.0, None, True, "median")),
    ([[10, 11, 400], [-3, -3, -3]], (None, None, True, "median")),
    ([[2.5, 2.75], [3.1, 40.0]], (0.0, None, False, "median")),
    ([[0, 0], [0]], (0.0, None, True, "median")),
    ([], (0.0, None, False, "median")),
])
def test_the_scale_is_read_off_the_values(tasks, scale):
    assert scale_of(detected_scale(tasks)) == scale


def test_config_from_answers_is_a_loaded_config_that_reads_every_answer(number):
    answers = {"r1": values(80, -40, 76), "r2": values(10, -90, 100), "r3": values(0, -100)}
    config = number.config_from_answers(answers)
    assert config == number.load_config({"question": "What is the value?", "min": -100,
                                         "max": 100, "method": "mean"})
    schema = number.answer_schema(config)
    assert all(schema.load(answer) == answer for task in answers.values() for answer in task)
    assert number.config_from_answers({"t": values(12, 13), "u": values(130)})["max"] is None


def test_the_mean_counts_every_answer_once_whatever_the_weights(number):
    rating = number.load_config({"question": "How angry?", "min": 0, "max": 100,
                                 "method": "mean"})
    answers = values(0, 0, 0, 80, 100)
    plain = number.aggregate(answers, None, rating)
    assert plain.value == pytest.approx(36.0)
    assert number.aggregate(answers, [1.0, 1.0, 1.0, 0.1, 0.1], rating).value == plain.value
    assert plain.support["kept"] == 5 and 0 < plain.confidence < 1
    median = number.aggregate(answers, None, {**rating, "method": "median"})
    assert median.value == 0  # the crowd's most common answer, not its average opinion


def test_the_mean_on_an_open_scale_still_sets_a_slip_aside(number):
    free = number.load_config({"question": "How long?", "method": "mean"})
    merged = number.aggregate(values(10, 11, 12, 120), None, free)
    assert merged.value == pytest.approx(11.0) and merged.support["kept"] == 3


def test_the_mean_is_a_method_a_project_may_choose(number):
    assert number.load_config({"question": "How sure?", "method": "mean"})["method"] == "mean"
    fields = number.config_schema().fields
    assert "mean" in fields["method"].metadata["description"]
