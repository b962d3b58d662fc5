"""Proof of work for anonymous sign-up (engine.accounts.challenge)."""
from __future__ import annotations

import pytest

from engine.accounts import challenge
from engine.errors import ConflictError, InvalidError

SECRET = "s3cret"


def test_a_solved_challenge_passes_and_names_its_key():
    issued = challenge.issue(SECRET, 8)
    nonce = challenge.solve(issued.text, 8)
    assert challenge.solves(issued.text, nonce, 8)
    key = challenge.verify(SECRET, 8, issued.text, nonce)
    assert key and key in issued.text


def test_the_work_is_the_bits_asked():
    """About 2^bits hashes: a solution for 12 bits is rarely one for 12 more."""
    issued = challenge.issue(SECRET, 12)
    assert challenge.solves(issued.text, challenge.solve(issued.text, 12), 12)
    tries = [challenge.solves(issued.text, str(n), 12) for n in range(2000)]
    assert sum(tries) <= 5  # 2000 / 4096 expected about 0.5


@pytest.mark.parametrize("change, field", [
    (lambda text, nonce: (None, nonce), "challenge"),  # none sent
    (lambda text, nonce: (text[:-1] + ("0" if text[-1] != "0" else "1"), nonce), "challenge"),
    (lambda text, nonce: ("9" + text[1:], nonce), "challenge"),  # its difficulty raised by hand
    (lambda text, nonce: (text, str(int(nonce) + 1) + "x"), "nonce"),
])
def test_what_is_refused_and_which_field_it_names(change, field):
    issued = challenge.issue(SECRET, 8)
    nonce = challenge.solve(issued.text, 8)
    text, sent = change(issued.text, nonce)
    with pytest.raises(InvalidError) as refused:
        challenge.verify(SECRET, 8, text, sent)
    assert field in refused.value.fields


def test_no_challenge_is_a_distinct_error_the_page_acts_on():
    with pytest.raises(challenge.ChallengeRequiredError) as refused:
        challenge.verify(SECRET, 8, None, None)
    assert refused.value.code == "challenge_required"


def test_another_sites_challenge_an_expired_one_and_an_easier_one_are_refused():
    issued = challenge.issue(SECRET, 8)
    nonce = challenge.solve(issued.text, 8)
    with pytest.raises(InvalidError, match="not issued here"):
        challenge.verify("another secret", 8, issued.text, nonce)
    with pytest.raises(InvalidError, match="expired"):
        challenge.verify(SECRET, 8, issued.text, nonce,
                         now=issued.expires_at + 1)
    with pytest.raises(InvalidError, match="easier"):  # the site asks more now
        challenge.verify(SECRET, 9, issued.text, nonce)


def test_a_challenge_signs_up_one_volunteer(services):
    issued = challenge.issue(SECRET, 4)
    key = challenge.verify(SECRET, 4, issued.text, challenge.solve(issued.text, 4))
    challenge.spend(services.redis, key)
    with pytest.raises(ConflictError):
        challenge.spend(services.redis, key)
    assert 0 < services.redis.ttl(challenge.USED_PREFIX + key) <= challenge.CHALLENGE_SECONDS


@pytest.mark.parametrize("bits", [-1, challenge.MAX_BITS + 1])
def test_a_difficulty_nobody_could_meet_is_refused(bits):
    with pytest.raises(ValueError, match="BITESIZE_SIGNUP_WORK"):
        challenge.check_setting(bits)
