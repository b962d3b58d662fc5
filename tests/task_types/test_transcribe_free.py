"""transcribe on free wording (text_medoid): telling it from a transcript, the
vote's weights there, the whole answer that may replace the vote, and blank
answers read as "no text"."""
import numpy as np
import pytest

from task_types import text_medoid
from task_types.text_align import UNCLEAR

# Five volunteers' wordings of one sentence: the same content, phrases moved about.
PARAPHRASES = [
    "After lunch the children went to see their grandmother because it was raining.",
    "Because it was raining, the kids visited their grandmother after lunch.",
    "The children visited their grandmother after the midday meal since it was raining.",
    "Since it rained the little ones went to see their grandmother after lunch.",
    "After lunch, because of the rain, the children called on their grandma.",
]
LETTER = [
    "The doctor wrote a lengthy letter behind the old church despite the cold.",
    "Behind the old church the doctor penned a long letter despite the cold.",
    "The village doctor wrote a lengthy letter despite the cold behind the old church.",
    "Behind the church in spite of the cold weather the village doctor wrote a lengthy letter.",
    "The doctor wrote a lengthy letter behind the church despite the cold.",
]


@pytest.fixture
def config(transcribe) -> dict:
    return transcribe.load_config({})


def merged(transcribe, config, texts, weights=None):
    return transcribe.aggregate([{"text": text} for text in texts], weights, config)


def words_only(monkeypatch, transcribe, config, texts, weights=None):
    """The merge as it was before free wording was told apart."""
    with monkeypatch.context() as patch:
        patch.setattr(text_medoid, "FREE_WORDING", -1.0)
        return merged(transcribe, config, texts, weights)


def test_near_identical_transcripts_are_voted_word_by_word(transcribe, config):
    line = "Dear Sir, I write to you from the front"
    texts = ["Dear Sir, I write to you from the frnt", "Dear Sir I write to you from the front",
             "Dear Sir, I wrote to you from the front", "dear Sir, I write to yo from the front"]
    result = merged(transcribe, config, texts)
    assert result.value == line and line not in texts  # made by the vote, not picked
    assert result.support["merge"] == "words" and result.support["free_wording"] is False
    assert result.support["word_agreement"] >= text_medoid.FREE_WORDING


def test_paraphrases_are_free_wording(transcribe, config):
    result = merged(transcribe, config, PARAPHRASES)
    assert result.support["free_wording"] is True
    assert result.support["word_agreement"] < text_medoid.FREE_WORDING
    assert result.support["merge"] in ("words", "medoid")


def test_a_whole_answer_replaces_a_vote_that_one_volunteer_carries(
        monkeypatch, transcribe, config):
    """Careful volunteers, one trusted more: log-odds weights let that one carry
    the vote, but another answer is nearer to what everyone typed."""
    weights = [0.75, 0.95, 0.75, 0.75, 0.75]
    result = merged(transcribe, config, LETTER, weights)
    assert result.value == LETTER[4]  # one volunteer's answer, as typed
    assert result.support["merge"] == "medoid" and result.support["chosen"] == 4
    assert result.support["free_wording"] is True and "columns" not in result.support
    assert 0.0 < result.confidence < 1.0
    assert words_only(monkeypatch, transcribe, config, LETTER, weights).value != LETTER[4]


def test_free_wording_weighs_volunteers_by_reliability_as_it_is(
        monkeypatch, transcribe, config):
    """On free wording every careful volunteer scores about 0.5; log-odds would
    make the one just above 0.5 the whole merge."""
    weights = [0.45, 0.55, 0.5, 0.45, 0.5]
    assert words_only(monkeypatch, transcribe, config, PARAPHRASES, weights).value == \
        PARAPHRASES[1]
    result = merged(transcribe, config, PARAPHRASES, weights)
    assert result.support["free_wording"] is True
    assert result.value != PARAPHRASES[1]


def test_the_vote_keeps_log_odds_when_volunteers_score_well_elsewhere():
    """A hard line on speech agrees little too, but its volunteers are trusted:
    log-odds weights stay; below a newcomer's reliability they give way."""
    log_odds = [2.2, 4.6, 2.2]
    assert text_medoid.free_vote_weights([0.9, 0.99, 0.9], log_odds) == log_odds
    assert text_medoid.free_vote_weights([0.5, 0.6, 0.9], [0.01, 0.4, 2.2]) == [0.5, 0.6, 0.9]


def test_two_answers_are_never_free_wording(transcribe, config):
    result = merged(transcribe, config, ["the old mill", "the cold hill"])
    assert result.support["word_agreement"] < text_medoid.FREE_WORDING
    assert result.support["free_wording"] is False and result.support["merge"] == "words"
    assert result.value == "the old mill" and result.support["columns"] == 3


def test_no_text_answers_do_not_make_a_line_free_wording(transcribe, config):
    texts = ["Dear Sir", "Dear Sir", "dear sir,", UNCLEAR, UNCLEAR]
    result = merged(transcribe, config, texts)
    assert result.support["free_wording"] is False and result.support["word_agreement"] == 1.0
    assert result.value == "Dear Sir"


# -- the medoid and the agreement, on their own ------------------------------------


def test_weights_choose_the_medoid():
    dist = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], dtype=float)
    sim = text_medoid.similarities(dist, [2, 2, 2])
    assert text_medoid.medoid(dist, sim, [1.0, 1.0, 1.0]).index == 1
    assert text_medoid.medoid(dist, sim, [5.0, 1.0, 1.0]).index == 0
    assert text_medoid.medoid(dist, sim, [1.0, 1.0, 5.0]).index == 2
    chosen = text_medoid.medoid(dist, sim, [1.0, 1.0, 1.0])
    assert chosen.confidence == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_the_medoid_is_weighed_against_the_vote_without_its_own_answer():
    medoid_edits = np.array([0.0, 2.0, 2.0])
    # the vote's text is 1 edit from every answer: nearer to the others than the medoid
    assert not text_medoid.nearer_than_vote(0, medoid_edits, np.ones(3), [1.0, 1.0, 1.0])
    assert text_medoid.nearer_than_vote(0, medoid_edits, np.full(3, 3.0), [1.0, 1.0, 1.0])


def test_agreement_is_weighted_by_pairs():
    sim = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert text_medoid.agreement(sim, [1.0, 1.0, 1.0]) == pytest.approx(0.3)
    assert text_medoid.agreement(sim, [1.0, 1.0, 0.01]) > 0.85  # a careless third
    assert text_medoid.agreement(sim[:1, :1], [1.0]) == 1.0
    assert text_medoid.similarities(np.zeros((2, 2)), [0, 0]).tolist() == [[1.0, 1.0]] * 2


# -- blank answers in an answers CSV ---------------------------------------------------


@pytest.mark.parametrize("cell", ["", " ", "\t\r\n  "])
def test_a_blank_cell_is_the_no_text_answer(transcribe, config, cell):
    offline = transcribe.offline_config()
    answer = transcribe.answer_schema(offline).load(transcribe.answer_from_text(cell, offline))
    assert answer == {"text": UNCLEAR}
    assert transcribe.answer_to_text(answer) == UNCLEAR
    lines = [{"text": "Dear Sir"}, {"text": "Dear Sir"}, answer]
    assert transcribe.aggregate(lines, None, config).value == "Dear Sir"
    assert transcribe.aggregate([answer], None, config).value == UNCLEAR


def test_a_typed_cell_is_read_as_typed(transcribe):
    offline = transcribe.offline_config()
    assert transcribe.answer_from_text(" Dear Sir ", offline) == {"text": " Dear Sir "}
