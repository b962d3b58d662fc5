"""Quality: from answers to trusted results. Truth inference, the live merge
and retirement, the periodic reliability estimates, review, moderation and
offline merging. Sits above dispatch: it settles and reopens tasks there."""
