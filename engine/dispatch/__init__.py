"""Dispatch: who may get which task. The Redis state per project, its Lua
scripts (checkout, submit, release, extend, settle, and submit_checkout for
an answer that asks for the next task: both in one call), lease tokens, and
its rebuild from SQL. Knows nothing of consensus: quality settles tasks here."""
