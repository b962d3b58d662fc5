"""locate: merging volunteers' marks on one tile, and scoring marks against gold."""
import json
import math

import numpy as np
import pytest

from task_types.geometry import Likeness, cluster, weighted_median

# -- aggregate -------------------------------------------------------------


def answers_of(*marks: list) -> list[dict]:
    return [{"boxes": list(m)} for m in marks]


PENGUIN = [10.0, 10.0, 50.0, 90.0]
NEAR = [12.0, 8.0, 52.0, 88.0]
ROCK = [200.0, 200.0, 240.0, 230.0]


def test_a_majority_keeps_a_box_and_drops_a_lone_one(locate, boxes):
    result = locate.aggregate(answers_of([PENGUIN], [NEAR, ROCK], [PENGUIN]), None, boxes)
    assert result.value == [[10.0, 10.0, 50.0, 90.0]]
    assert result.confidence == pytest.approx(2 / 3)  # the rock: 1 of 3 saw it
    assert result.support == {"answers": 3, "clusters": 2, "marks": [
        {"box": [10.0, 10.0, 50.0, 90.0], "share": 1.0, "kept": True},
        {"box": ROCK, "share": pytest.approx(1 / 3), "kept": False}]}


def test_weights_decide_which_boxes_stand(locate, boxes):
    answers = answers_of([PENGUIN, ROCK], [], [])
    assert locate.aggregate(answers, None, boxes).value == []
    trusted = locate.aggregate(answers, [0.9, 0.2, 0.2], boxes)
    assert trusted.value == [PENGUIN, ROCK]
    assert trusted.confidence == pytest.approx(0.9 / 1.3)


def test_the_box_is_the_weighted_median(locate, boxes):
    answers = answers_of([[10, 10, 50, 90]], [[14, 12, 54, 94]], [[11, 9, 49, 91]])
    assert locate.aggregate(answers, None, boxes).value == [[11.0, 10.0, 50.0, 91.0]]
    assert locate.aggregate(answers, [0.1, 0.8, 0.1], boxes).value == [[14.0, 12.0, 54.0, 94.0]]
    two = locate.aggregate(answers[:2], None, boxes)
    assert two.value == [[12.0, 11.0, 52.0, 92.0]]  # halfway between two


def test_one_volunteer_counts_once_per_thing(locate, boxes):
    """Two boxes of one volunteer on one penguin are not two votes for it."""
    result = locate.aggregate(answers_of([PENGUIN, NEAR], [], []), None, boxes)
    assert result.value == []
    assert [mark["share"] for mark in result.support["marks"]] == pytest.approx([1 / 3, 1 / 3])


def test_quorum_is_a_share_of_the_weight(locate, boxes):
    answers = answers_of([PENGUIN], [NEAR], [], [])
    assert locate.aggregate(answers, None, boxes).value == [[11.0, 9.0, 51.0, 89.0]]
    strict = {**boxes, "quorum": 0.75}
    assert locate.aggregate(answers, None, strict).value == []


def test_iou_threshold_decides_what_is_one_thing(locate, boxes):
    shifted = [30.0, 10.0, 70.0, 90.0]  # IoU 1/3 with PENGUIN
    answers = answers_of([PENGUIN], [shifted])
    assert len(locate.aggregate(answers, None, boxes).value) == 2
    assert len(locate.aggregate(answers, None, {**boxes, "iou": 0.3}).value) == 1


def test_nothing_everywhere_is_a_sure_empty_list(locate, boxes):
    result = locate.aggregate(answers_of([], [], []), None, boxes)
    assert (result.value, result.confidence) == ([], 1.0)


@pytest.mark.parametrize(
    ("answers", "weights"),
    [([], None), (answers_of([PENGUIN]), [0.0]), ([{"points": [[1, 2]]}], None)],
    ids=["none", "zero-weight", "other-shape"],
)
def test_no_weight_means_no_result(locate, boxes, answers, weights):
    result = locate.aggregate(answers, weights, boxes)
    assert (result.value, result.confidence) == (None, 0.0)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [1.0, math.nan]],
                         ids=["misaligned", "negative", "nan"])
def test_aggregate_refuses_bad_weights(locate, boxes, weights):
    with pytest.raises(ValueError):
        locate.aggregate(answers_of([PENGUIN], [NEAR]), weights, boxes)


def test_aggregate_does_not_depend_on_answer_order(locate, boxes):
    marks = [[PENGUIN, ROCK], [NEAR], [ROCK, [300, 10, 320, 40]], [PENGUIN, ROCK]]
    results = {json.dumps(locate.aggregate(answers_of(*order), None, boxes).value)
               for order in (marks, marks[::-1], marks[1:] + marks[:1])}
    assert results == {json.dumps([PENGUIN, ROCK])}


def test_points_cluster_within_the_radius(locate, points):
    answers = [{"points": [[100, 100], [300, 300]]}, {"points": [[104, 97]]},
               {"points": [[130, 100]]}]
    result = locate.aggregate(answers, None, points)
    assert result.value == [[102.0, 98.5]]
    assert result.support["marks"][0] == {"point": [102.0, 98.5], "share": pytest.approx(2 / 3),
                                          "kept": True}
    assert locate.aggregate(answers, None, {**points, "radius": 40}).value == [[104.0, 100.0]]


def test_clusters_are_average_linked_not_chained():
    """A chain of boxes each like the next is not one thing when its ends differ."""
    chain = np.array([[0, 0, 100, 100], [30, 0, 130, 100], [60, 0, 160, 100]], dtype=float)
    assert cluster(chain, [0, 1, 2], Likeness(iou=0.5)) == [[0, 1], [2]]


def test_weighted_median_splits_the_weight():
    values = np.array([1.0, 5.0, 2.0])
    assert weighted_median(values, np.array([1.0, 1.0, 1.0])) == 2.0
    assert weighted_median(values, np.array([1.0, 3.0, 1.0])) == 5.0
    assert weighted_median(values[:2], np.array([2.0, 2.0])) == 3.0
    assert weighted_median(values, np.array([1.0, 1.0, 0.0])) == 3.0


# -- score -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("marks", "gold", "expected"),
    [
        ([PENGUIN], [PENGUIN], 1.0),
        ([NEAR], [PENGUIN], 1.0),
        ([], [], 1.0),
        ([PENGUIN], [], 0.0),
        ([], [PENGUIN], 0.0),
        ([PENGUIN, ROCK], [PENGUIN], 2 / 3),
        ([PENGUIN, NEAR], [PENGUIN], 2 / 3),  # one to one: the double is a miss
        ([[30.0, 10.0, 70.0, 90.0]], [PENGUIN], 0.0),  # IoU 1/3 < 0.5
        ([PENGUIN], None, 0.0),
        ([PENGUIN], "10,10,50,90", 0.0),
        ([PENGUIN], [[10, 10, 50]], 0.0),
        ([PENGUIN], [[10, 10, "50", 90]], 0.0),
        ([PENGUIN], [[10, 10, math.nan, 90]], 0.0),
        ([PENGUIN], {"boxes": [PENGUIN]}, 0.0),
    ],
)
def test_score_is_f1_at_iou_half(locate, marks, gold, expected):
    assert locate.score({"boxes": marks}, gold) == pytest.approx(expected)


def test_score_points_within_twenty_pixels(locate):
    assert locate.score({"points": [[10, 10], [100, 100]]}, [[25, 20], [100, 130]]) == 0.5
    assert locate.score({"points": [[10, 10]]}, [PENGUIN]) == 0.0


def test_detection_counts_for_precision_and_recall(locate):
    detection = locate.detection({"boxes": [PENGUIN, ROCK, [300, 0, 340, 40]]},
                                 [NEAR, [500, 0, 540, 40]])
    assert (detection.matched, detection.found, detection.expected) == (1, 3, 2)
    assert (detection.precision, detection.recall) == (pytest.approx(1 / 3), 0.5)
    total = detection + locate.detection({"boxes": [ROCK]}, [ROCK])
    assert (total.precision, total.recall, total.f1) == (0.5, pytest.approx(2 / 3),
                                                         pytest.approx(4 / 7))
    assert locate.detection({"boxes": []}, None) is None
