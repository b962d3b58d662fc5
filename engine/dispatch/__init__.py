"""Dispatch: who may get which task. The Redis state per project, its Lua
scripts (checkout, submit, release, extend, settle), lease tokens, and its
rebuild from SQL. Knows nothing of consensus: quality settles tasks here."""
