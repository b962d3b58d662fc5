"""Rate limits: how often one volunteer, user, address, network or organisation may act.

The limits are the Settings strings limit_* ("N/unit", several joined by ";"),
parsed with the `limits` library; Settings.rate_limits == 0 turns them all off.
Counters live in the app's own Redis, so every web process shares them.

One Lua call per check, whatever the number of windows, sent on the dispatch
scripts' lean path (engine.store.redis_wire): it reads every window
of every limit asked about and counts the request in all of them only when all
have room, so a refused request uses up nothing (a refused sign-up does not eat
the network's allowance). Fixed windows, each started by its first hit and
ended by Redis's expiry. The Flask views reach it through `enforce`. Answers
are the exception: the answer's own submit script counts them (AnswerTally),
so the volunteer's hot path (web.hot_path) makes no call for its limit.

Which limit keys on what:
  volunteers, volunteers_network  sign-ups per client address and per /24 or /56
  answers                         answers per volunteer (hot path and Flask alike),
                                  counted by the answer's own submit (AnswerTally)
  api                             calls per user (charity, admin), any of its tokens
  auth_failures                   bad tokens per client address; only failures count,
                                  so one typo-prone client behind a school's NAT
                                  never locks the others out: a correct token
                                  always passes, a bad one past the limit gets 429
  uploads                         job uploads per organisation
  emails, emails_client           requests that name an e-mail address (a staff
                                  member's password reset, a volunteer keeping their
                                  work under one) per address named, and per client
                                  address: mail to one inbox, links voided by newer
                                  ones and guesses at who has an account stay few

The client address is request.remote_addr (REMOTE_ADDR on the hot path): behind
a proxy, ProxyFix in front of the whole WSGI stack makes it the client's.
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import redis
from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse_many

from engine.accounts.mail import folded
from engine.config import Settings
from engine.dispatch.dispatcher import Tally
from engine.errors import BitesizeError, TooManyRequestsError
from engine.identity import Identity
from engine.services import Services
from engine.store.redis_server import REDIS_DOWN, is_cluster
from engine.store.redis_wire import RedisWire
from engine.tokens import token_hash

NAMES = ("volunteers", "volunteers_network", "answers", "api", "auth_failures", "uploads",
         "emails", "emails_client")
# While Redis cannot be reached nothing can be counted. Answers (kept in SQL for
# replay) and users' calls go on uncounted rather than lose volunteers' work or
# lock charities out of their data; sign-ups, bad tokens and uploads get the 503.
OPEN_WHEN_DOWN = frozenset({"answers", "api"})
KEY_PREFIX = "bs:rl"
EXTENSION = "bitesize_rate_limits"

# KEYS[i]: one window's counter; ARGV[2i-1], ARGV[2i]: its allowance and length (ms).
# Replies {room, used_1, ttl_ms_1, used_2, ttl_ms_2, ...}; `used` after the hit when
# there was room, before it when not.
_HIT = """
local room, seen = 1, {}
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then ttl = tonumber(ARGV[2 * i]) end
  if used >= tonumber(ARGV[2 * i - 1]) then room = 0 end
  seen[i] = {used, ttl}
end
local reply = {room}
for i, key in ipairs(KEYS) do
  local used, ttl = seen[i][1], seen[i][2]
  if room == 1 then
    used = redis.call('INCR', key)
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ttl) end
  end
  reply[#reply + 1] = used
  reply[#reply + 1] = ttl
end
return reply
"""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check, as told in the IETF draft's RateLimit-* headers:
    the window with the least room left (when refused: the one that ends last
    among the full ones, so Retry-After is really long enough)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # whole seconds until that window starts over

    def headers(self) -> list[tuple[str, str]]:
        head = [("RateLimit-Limit", str(self.limit)),
                ("RateLimit-Remaining", str(self.remaining)),
                ("RateLimit-Reset", str(self.reset))]
        return head if self.allowed else [*head, ("Retry-After", str(self.reset))]

    def tighter(self, other: Verdict | None) -> Verdict:
        """Of two checks made for one request, the one to report."""
        if other is None:
            return self
        return min(self, other, key=lambda v: (v.allowed, v.remaining, -v.reset))


class RateLimitedError(TooManyRequestsError):
    """Over a rate limit (429): wait Retry-After seconds."""

    code = "rate_limited"

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"too many requests; try again in {verdict.reset} seconds",
                         retry_after=verdict.reset)
        self.verdict = verdict

    def headers(self) -> list[tuple[str, str]]:
        return self.verdict.headers()


class RateLimiter:
    """The parsed limits and the one script that checks them, for one app."""

    def __init__(self, settings: Settings, connection: Callable[[], redis.Redis]) -> None:
        self.limits: dict[str, list[RateLimitItem]] = {
            name: _parse(getattr(settings, f"limit_{name}")) for name in NAMES}
        self.connection = connection  # Services.redis, connected on first use
        self._script = None
        self._wire: RedisWire | None = None
        self._per_slot = False  # a Redis Cluster: one call per (name, who)
        # volunteers whose answer window this process saw fill: (until, refusal)
        self._full: dict[int, tuple[float, Verdict]] = {}

    def check(self, *checks: tuple[str, object]) -> Verdict | None:
        """Count one request against every (limit name, who) given; raise
        RateLimitedError when any window is full. None when none applies.

        One script call counts them all, or none when one is full. On a Redis
        Cluster each (name, who) has a slot of its own, so each is one call,
        in the order given, stopping at the first that is full: a request
        refused by its second limit was still counted by its first."""
        groups = []
        for name, who in checks:
            items = self.limits[name]
            if items:
                groups.append(([_key(name, who, item) for item in items],
                               [v for item in items for v in (item.amount,
                                                              item.get_expiry() * 1000)],
                               [item.amount for item in items]))
        if not groups:
            return None
        try:
            script = self._hit()
            if not self._per_slot:
                groups = [tuple([part for group in groups for part in group[n]]
                                for n in range(3))]
            verdict = None
            for keys, args, amounts in groups:
                reply = self._wire.script(script, keys, args)
                found = _verdict(bool(reply[0]), amounts, reply[1::2], reply[2::2])
                if not found.allowed:
                    raise RateLimitedError(found)
                verdict = found.tighter(verdict)
        except REDIS_DOWN:
            if all(name in OPEN_WHEN_DOWN for name, _ in checks):
                return None
            raise
        return verdict

    def answer_tally(self, volunteer_id: int) -> AnswerTally | None:
        """The windows a volunteer's next answer is counted in by its own submit,
        None when answers have no limit. Raises RateLimitedError, before the
        answer is read or stored, while a window this process saw fill is on."""
        items = self.limits["answers"]
        if not items:
            return None
        full = self._full.get(volunteer_id)
        if full is not None:
            left = full[0] - time.monotonic()
            if left > 0:
                raise RateLimitedError(replace(full[1], reset=max(1, math.ceil(left))))
            self._full.pop(volunteer_id, None)
        who = str(volunteer_id)
        return AnswerTally(self, volunteer_id,
                           tuple((_key("answers", who, item), item.get_expiry() * 1000)
                                 for item in items),
                           tuple(item.amount for item in items))

    def note_tallied(self, tally: AnswerTally, tallied: tuple[tuple[int, int], ...]
                      ) -> Verdict | None:
        """The verdict on an answer its submit counted (None if it was not:
        Redis was away); a window now full refuses the volunteer's next answers
        here until it ends."""
        if not tallied:
            return None
        used, ttls = [u for u, _ in tallied], [t for _, t in tallied]
        full = [(ttl, amount) for amount, count, ttl in zip(tally.amounts, used, ttls,
                                                               strict=True) if count >= amount]
        if full:
            self._remember_full(tally.volunteer_id, *max(full))
        return _verdict(True, list(tally.amounts), used, ttls)

    def count_refused_answer(self, volunteer_id: int) -> None:
        """An answer refused before its submit, counted by a check of its own
        (RateLimitedError once the window is full)."""
        verdict = self.check(("answers", str(volunteer_id)))
        if verdict is not None and verdict.remaining == 0:
            self._remember_full(volunteer_id, verdict.reset * 1000, verdict.limit)

    def _remember_full(self, volunteer_id: int, ttl_ms: int, amount: int) -> None:
        """Refuse this volunteer's answers here until the window ends."""
        if len(self._full) > 100_000:  # a bound; forgetting only loosens the limit
            self._full.clear()
        self._full[volunteer_id] = (time.monotonic() + ttl_ms / 1000,
                                    Verdict(False, amount, 0, math.ceil(ttl_ms / 1000)))

    def _hit(self):
        if self._script is None:
            client = self.connection()
            self._script, self._wire = client.register_script(_HIT), RedisWire(client)
            self._per_slot = is_cluster(client)
        return self._script


@dataclass
class AnswerTally:
    """One answer's count against its volunteer's answer limits.

    The answer's own dispatch script counts it (Dispatcher.submit's tally),
    after the answer is stored, so an answer costs no Redis call for its
    limit. Refusing comes first, from what this process knows: once a reply
    showed a window full, the volunteer's answers are refused here until it
    ends (RateLimiter.answer_tally). Another web process learns the same
    from its own next answer, and answers already in flight when the window
    filled still pass, so a volunteer may get a few answers past the limit
    (at most their requests in flight across processes and threads): a soft
    limit, which is what it is for (a person's pace against a script's), at
    no Redis call per answer. An answer refused before its submit is counted
    by a check of its own (counting_refusals).
    """

    limiter: RateLimiter
    volunteer_id: int
    windows: Tally  # (counter key, window length in ms) each
    amounts: tuple[int, ...]
    verdict: Verdict | None = field(default=None)

    def settle(self, tallied: tuple[tuple[int, int], ...]) -> Verdict | None:
        """Read the submit's tally: the verdict whose headers the reply carries."""
        self.verdict = self.limiter.note_tallied(self, tallied)
        return self.verdict

    @contextmanager
    def counting_refusals(self) -> Iterator[None]:
        """Around an answer's handling: an answer refused before its submit (a bad
        body, a lease gone, already answered) is counted by a check of its own,
        so failing answers are no free way round the limit; a 429 replaces the
        refusal once the window is full."""
        try:
            yield
        except BitesizeError as refused:
            if self.verdict is None and not isinstance(refused, RateLimitedError):
                self.limiter.count_refused_answer(self.volunteer_id)
            raise


def _key(name: str, who: object, item: RateLimitItem) -> str:
    """A window's counter; a (name, who)'s windows share a Cluster slot (its tag)."""
    return f"{KEY_PREFIX}:{{{name}:{who}}}:{item.amount}/{item.get_expiry()}"


def _parse(text: str) -> list[RateLimitItem]:
    """"N/unit;M/unit" as `limits` reads it; empty: no limit of this kind."""
    return parse_many(text) if text.strip() else []


def _verdict(allowed: bool, amounts: list[int], used: list[int], ttls: list[int]) -> Verdict:
    windows = [(amount, amount - count if allowed else 0, math.ceil(ttl / 1000))
               for amount, count, ttl in zip(amounts, used, ttls, strict=True)
               if allowed or count >= amount]
    amount, remaining, reset = min(windows, key=lambda w: (w[1], -w[2]))
    return Verdict(allowed, amount, max(remaining, 0), max(reset, 1))


# --- who is asking ---------------------------------------------------------------

def network_of(address: str) -> str:
    """The /24 (IPv4) or /56 (IPv6) a client address is in: what one household,
    school or small provider's customers share; the address itself if unreadable."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 56
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def sign_up_checks(address: str) -> tuple[tuple[str, str], ...]:
    return (("volunteers", address), ("volunteers_network", network_of(address)))


def api_checks(user_id: int) -> tuple[tuple[str, str], ...]:
    return (("api", str(user_id)),)


def auth_failure_checks(address: str) -> tuple[tuple[str, str], ...]:
    return (("auth_failures", address),)


def email_checks(address: str, email: str) -> tuple[tuple[str, str], ...]:
    """A request naming `email`, from client `address`: the same allowance whether
    or not an account has that address, so a 429 tells nobody which have one.
    The address is keyed by its hash, as sign-in failures are: no e-mail address
    sits in Redis's key names."""
    # folded as accounts are, not judged: an address kept before the check was
    # as strict as now is counted, not refused here
    return (("emails", token_hash(folded(email))), ("emails_client", address))


def upload_checks(caller: Identity) -> tuple[tuple[str, str], ...]:
    """Per organisation: every member's uploads share one allowance."""
    who = caller.organisation_id if caller.organisation_id is not None else f"user-{caller.id}"
    return (("uploads", str(who)),)


# --- Flask's side --------------------------------------------------------------------

def limiter_of(app: Flask) -> RateLimiter | None:
    """The app's limiter, None when limits are off."""
    return app.extensions.get(EXTENSION)


def client_address() -> str:
    return request.remote_addr or "unknown"


def enforce(*checks: tuple[str, object]) -> None:
    """Check the current request against limits; its reply then carries the
    RateLimit-* headers of the tightest one (and Retry-After on a 429)."""
    limiter = limiter_of(current_app)
    if limiter is None:
        return
    try:
        verdict = limiter.check(*checks)
    except RateLimitedError as exc:
        g.rate_limit = exc.verdict
        raise
    if verdict is not None:
        g.rate_limit = verdict.tighter(g.get("rate_limit"))


def _add_headers(response):
    verdict = g.get("rate_limit")
    if verdict is not None:
        for name, value in verdict.headers():
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Build the limiter from the app's settings (ValueError at start-up for a
    limit string `limits` cannot read) unless rate_limits is 0."""
    services: Services = app.extensions["bitesize"]
    if services.settings.rate_limits:
        app.extensions[EXTENSION] = RateLimiter(services.settings, lambda: services.redis)
    app.after_request(_add_headers)
