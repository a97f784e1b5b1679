"""Simulated casino players: who they are, what they can afford, how they play.

A load test against a seamless wallet is only as good as the traffic it sends.
Real traffic is a mix of currencies with very different scales (a 100 KRW spin
and a 0.00001 BTC spin are both "small"), of cautious and reckless players, of
fast slot spinners and slow live-table players.  This module produces such a
population, and is built for reproducibility first:

* **Pure and seeded.**  Nothing here touches the global :mod:`random` state or
  does I/O.  Every player is derived from ``(seed, index)`` alone, so the same
  seed gives the same players in every process and ``make_players(s, n)[:k] ==
  make_players(s, k)``: a failing run can be replayed from its seed.
* **Integers only on money paths.**  Stakes, bankrolls and deposits are ``int``
  minor units of the player's currency (see :mod:`simulator.protocol.money`); weighted
  choices use integer weights and ``randrange`` so not even the selection of an
  amount passes through a float.
* **Fast.**  Faker instances are slow to build, so one generator per locale is
  cached and reseeded per player; 10,000 players take a fraction of a second.

The behaviour functions (:func:`choose_stake`, :func:`think_time`,
:func:`choose_game_kind`) take the caller's :class:`random.Random`, so a driver
owns its randomness and can reproduce a session from its own seed.
"""

from __future__ import annotations

import random
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final, Literal, TypeVar

from faker import Faker

from ..protocol.money import CURRENCIES, currency

__all__ = [
    "CRYPTO_CURRENCIES",
    "GAME_KINDS",
    "LOCALES",
    "RISK_STYLES",
    "STAKE_LADDERS",
    "GameKind",
    "LocaleEntry",
    "PlayerProfile",
    "PlayerRandom",
    "Risk",
    "choose_game_kind",
    "choose_stake",
    "make_players",
    "think_time",
]

GameKind = Literal["slot", "roulette", "live", "crash"]
Risk = Literal["low", "medium", "high"]

GAME_KINDS: Final[tuple[GameKind, ...]] = ("slot", "roulette", "live", "crash")
"""The kinds of game a player can prefer; the order indexes the bias tuples below."""

RISK_STYLES: Final[tuple[Risk, ...]] = ("low", "medium", "high")

CRYPTO_CURRENCIES: Final = frozenset({"BTC", "ETH", "USDT"})

# --------------------------------------------------------------------------- stakes

STAKE_LADDERS: Final[dict[str, tuple[int, ...]]] = {
    # Minor units.  Each ladder is what a lobby typically offers in that currency,
    # not a conversion of one ladder: operators pick round local numbers, so the
    # ladders differ in both range and steps.
    "EUR": (10, 20, 50, 100, 200, 500),  # €0.10 – €5.00
    "USD": (10, 25, 50, 100, 250, 500, 1_000),  # $0.10 – $10.00, quarter steps
    "GBP": (10, 20, 40, 80, 100, 200, 500),  # £0.10 – £5.00 (the UKGC online slot stake cap)
    "BRL": (50, 100, 200, 500, 1_000, 2_500),  # R$0.50 – R$25.00
    "TRY": (200, 500, 1_000, 2_000, 5_000, 10_000),  # ₺2 – ₺100 (the lira is weak)
    "INR": (1_000, 2_000, 5_000, 10_000, 20_000, 50_000),  # ₹10 – ₹500
    "JPY": (10, 20, 50, 100, 200, 500),  # ¥10 – ¥500 (no minor units)
    "KRW": (100, 200, 500, 1_000, 2_000, 5_000),  # ₩100 – ₩5,000
    "CLP": (100, 250, 500, 1_000, 2_500, 5_000),  # CLP 100 – 5,000
    "KWD": (50, 100, 200, 500, 1_000, 2_000),  # KD 0.050 – 2.000 (three decimals)
    "BHD": (50, 100, 250, 500, 1_000, 2_000),  # BD 0.050 – 2.000 (three decimals)
    "BTC": (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000),  # ₿0.00001 – 0.001
    "ETH": (10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000),  # Ξ0.0001 – 0.01
    "USDT": (100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000),  # 0.10 – 5.000000 USDT
}
"""Every stake a lobby offers per currency, ascending, in minor units.

Keys are exactly :data:`simulator.protocol.money.CURRENCIES`; a player's own
``stake_ladder`` is a contiguous run of its currency's ladder.
"""

# Opening balances are round deposits, as multiples of the currency's smallest
# stake (100× … 10,000×: €10 – €1,000, ¥1,000 – ¥100,000, 0.001 – 0.1 BTC).
_DEPOSIT_MULTIPLES: Final = (100, 200, 500, 1_000, 2_000, 5_000, 10_000)
_DEPOSIT_CUM: Final[dict[Risk, tuple[int, ...]]] = {
    "low": tuple(accumulate((30, 30, 25, 10, 4, 1, 0))),
    "medium": tuple(accumulate((10, 20, 30, 20, 12, 6, 2))),
    "high": tuple(accumulate((2, 5, 13, 25, 25, 18, 12))),
}

# How many stakes a player wants in their balance before stepping up: a cautious
# player keeps 50 bets in reserve, a reckless one 5.  Below that they fall back to
# their smallest stake rather than leave: players grind down to the minimum.
_RESERVE_BETS: Final[dict[Risk, int]] = {"low": 50, "medium": 20, "high": 5}

# --------------------------------------------------------------------------- locales


@dataclass(frozen=True, slots=True)
class LocaleEntry:
    """One kind of player: where Faker draws the name, where they live, what they pay in.

    ``locale`` is a Faker locale; ``weight`` is the share of a mixed population
    (integer, relative to the other entries); ``games`` biases the preferred game
    kinds, aligned with :data:`GAME_KINDS` (slot, roulette, live, crash).
    """

    locale: str
    country: str
    currency: str
    language: str
    weight: int
    games: tuple[int, int, int, int]


# Game-kind biases (slot, roulette, live, crash) per market: crash games (Aviator
# and kin) dominate in Brazil and India, live baccarat in Korea, slots in Europe
# and Japan.  Crypto players lean further to crash/"originals" (see _CRYPTO_GAMES).
_EU: Final = (70, 12, 12, 6)
_GB: Final = (60, 15, 20, 5)
_US: Final = (55, 15, 20, 10)
_BR: Final = (45, 10, 15, 30)
_TR: Final = (40, 15, 25, 20)
_IN: Final = (25, 15, 30, 30)
_JP: Final = (55, 10, 25, 10)
_KR: Final = (25, 10, 55, 10)
_CL: Final = (55, 15, 15, 15)
_GULF: Final = (35, 20, 35, 10)


def _crypto(games: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Crypto casinos push crash and dice-style originals: add weight to crash."""
    slot, roulette, live, crash = games
    return (slot, roulette, live, crash + 40)


LOCALES: Final[tuple[LocaleEntry, ...]] = (
    # Fiat players: one entry per (name locale, country) that pays in the currency.
    LocaleEntry("de_DE", "DE", "EUR", "de", 10, _EU),
    LocaleEntry("de_AT", "AT", "EUR", "de-AT", 2, _EU),
    LocaleEntry("fr_FR", "FR", "EUR", "fr", 6, _EU),
    LocaleEntry("es_ES", "ES", "EUR", "es", 6, _EU),
    LocaleEntry("it_IT", "IT", "EUR", "it", 6, _EU),
    LocaleEntry("nl_NL", "NL", "EUR", "nl", 3, _EU),
    LocaleEntry("fi_FI", "FI", "EUR", "fi", 2, _EU),
    LocaleEntry("pt_PT", "PT", "EUR", "pt-PT", 2, _EU),
    LocaleEntry("en_US", "US", "USD", "en-US", 8, _US),
    LocaleEntry("en_GB", "GB", "GBP", "en-GB", 8, _GB),
    LocaleEntry("pt_BR", "BR", "BRL", "pt-BR", 8, _BR),
    LocaleEntry("tr_TR", "TR", "TRY", "tr", 5, _TR),
    LocaleEntry("en_IN", "IN", "INR", "en-IN", 5, _IN),
    LocaleEntry("hi_IN", "IN", "INR", "hi", 3, _IN),
    LocaleEntry("ja_JP", "JP", "JPY", "ja", 5, _JP),
    LocaleEntry("ko_KR", "KR", "KRW", "ko", 4, _KR),
    LocaleEntry("es_CL", "CL", "CLP", "es-CL", 3, _CL),
    # Faker has no Kuwaiti or Bahraini person provider (ar_BH and ar_AE fall back to
    # English names), so Gulf nationals borrow ar_SA names.  Both states have large
    # Indian expatriate communities, hence the en_IN entries paying in KWD/BHD.
    LocaleEntry("ar_SA", "KW", "KWD", "ar", 2, _GULF),
    LocaleEntry("en_IN", "KW", "KWD", "en-IN", 1, _GULF),
    LocaleEntry("ar_SA", "BH", "BHD", "ar", 1, _GULF),
    LocaleEntry("en_IN", "BH", "BHD", "en-IN", 1, _GULF),
    # Crypto players are a share (about an eighth overall) of the players of markets
    # where crypto casinos are popular: Bitcoin in the US, Germany and Japan; Ether
    # in Korea and the US; USDT in Turkey and Brazil, where a dollar stablecoin is
    # the hedge against a falling lira or real.
    LocaleEntry("en_US", "US", "BTC", "en-US", 3, _crypto(_US)),
    LocaleEntry("de_DE", "DE", "BTC", "de", 2, _crypto(_EU)),
    LocaleEntry("ja_JP", "JP", "BTC", "ja", 1, _crypto(_JP)),
    LocaleEntry("ko_KR", "KR", "ETH", "ko", 2, _crypto(_KR)),
    LocaleEntry("en_US", "US", "ETH", "en-US", 1, _crypto(_US)),
    LocaleEntry("tr_TR", "TR", "USDT", "tr", 2, _crypto(_TR)),
    LocaleEntry("pt_BR", "BR", "USDT", "pt-BR", 2, _crypto(_BR)),
)
"""Faker locale → country → currency → language, covering every currency in CURRENCIES."""

_ALL_CUM: Final = tuple(accumulate(e.weight for e in LOCALES))


def _entries_of(code: str) -> tuple[tuple[LocaleEntry, ...], tuple[int, ...]]:
    """The entries paying in ``code`` and their cumulative weights."""
    entries = tuple(e for e in LOCALES if e.currency == code)
    return entries, tuple(accumulate(e.weight for e in entries))


_BY_CURRENCY: Final = {code: _entries_of(code) for code in CURRENCIES}

# Name order as people write it: family name first in Japan and Korea (Korean
# without a space).  First/last rather than Faker's name() keeps titles such as
# "Dr" or "الأستاذ" out of what a player typed into a sign-up form.
_NAME_FORMATS: Final[dict[str, str]] = {"ja_JP": "{last} {first}", "ko_KR": "{last}{first}"}

# --------------------------------------------------------------------------- pace

# Per primary game kind: (min, max) think time in ms, and (min, max) session rounds.
# Slots spin every second or two (autoplay faster); live tables and roulette have
# a 15–25 s betting window; crash rounds last a few seconds each.
_PACE: Final[dict[GameKind, tuple[tuple[int, int], tuple[int, int]]]] = {
    "slot": ((300, 4_000), (40, 600)),
    "roulette": ((5_000, 25_000), (15, 120)),
    "live": ((8_000, 30_000), (10, 80)),
    "crash": ((2_000, 12_000), (20, 200)),
}

_RISK_CUM: Final[dict[bool, tuple[int, ...]]] = {
    False: tuple(accumulate((50, 35, 15))),  # fiat: most players are cautious
    True: tuple(accumulate((30, 40, 30))),  # crypto: a bolder crowd
}
# How many game kinds a player bothers with (1–4): most stick to two or three.
_KINDS_COUNT_CUM: Final = tuple(accumulate((2, 4, 3, 1)))
# Preference falls off steeply: the first kind gets most of the rounds.
_POSITION_WEIGHTS: Final = (12, 4, 2, 1)
_POSITION_CUM: Final[tuple[tuple[int, ...], ...]] = tuple(
    tuple(accumulate(_POSITION_WEIGHTS[:n])) for n in range(1, len(_POSITION_WEIGHTS) + 1)
)


# --------------------------------------------------------------------------- profile


@dataclass(frozen=True, slots=True)
class PlayerProfile:
    """Who a simulated player is and the habits the simulator replays.

    Amounts are ``int`` minor units of ``currency`` (never floats), so a profile
    can be handed to a wallet's admin API as-is.  Frozen: a profile is a fixed
    description; the evolving balance lives with the driver.
    """

    player_id: str
    name: str
    locale: str
    """The Faker locale the name was drawn from (see :data:`LOCALES`)."""
    country: str
    """ISO 3166-1 alpha-2."""
    currency: str
    language: str
    """BCP 47 tag, e.g. ``"de"``, ``"pt-BR"``."""
    bankroll: int
    """Opening balance, minor units."""
    stake_ladder: tuple[int, ...]
    """Ascending stakes this player picks from, minor units."""
    preferred_games: tuple[GameKind, ...]
    """Game kinds in order of preference (most played first)."""
    session_rounds: int
    think_time_ms: tuple[int, int]
    """(min, max) pause between rounds, milliseconds."""
    risk: Risk


def _pick(rng: random.Random, cum: Sequence[int]) -> int:
    """Index drawn with integer cumulative weights: no float ever selects an amount."""
    return bisect_right(cum, rng.randrange(cum[-1]))


_FAKERS: dict[str, Any] = {}
_FAKER_LOCK = threading.Lock()


def _name(locale: str, seed: int) -> str:
    """A name from the cached generator for ``locale``, reseeded for this player.

    Building a Faker costs ~20 ms, reseeding microseconds; the lock keeps the
    reseed-then-draw pair atomic when several threads make players at once.
    """
    with _FAKER_LOCK:
        gen: Any = _FAKERS.get(locale)
        if gen is None:
            gen = _FAKERS[locale] = Faker(locale)[locale]
        gen.seed_instance(seed)
        first, last = gen.first_name(), gen.last_name()
    return _NAME_FORMATS.get(locale, "{first} {last}").format(first=first, last=last)


def _preferences(rng: random.Random, games: tuple[int, ...]) -> tuple[GameKind, ...]:
    """Draw an ordered subset of game kinds, without replacement, by market bias."""
    count = _pick(rng, _KINDS_COUNT_CUM) + 1
    kinds = list(GAME_KINDS)
    weights = list(games)
    chosen: list[GameKind] = []
    for _ in range(count):
        i = _pick(rng, tuple(accumulate(weights)))
        chosen.append(kinds.pop(i))
        weights.pop(i)
    return tuple(chosen)


def _ladder(rng: random.Random, base: tuple[int, ...], risk: Risk) -> tuple[int, ...]:
    """A contiguous run of at least three stakes: cautious players sit at the bottom,
    bold ones reach the top of the lobby's ladder."""
    size = len(base)
    if risk == "low":
        start, stop = 0, rng.randint(3, 4)
    elif risk == "medium":
        start = rng.randint(0, 1)
        stop = rng.randint(start + 3, min(size, start + 5))
    else:
        start, stop = rng.randint(1, size - 4), size
    return base[start:stop]


def _profile(
    seed: int, index: int, entries: tuple[LocaleEntry, ...], cum: tuple[int, ...], id_prefix: str
) -> PlayerProfile:
    """Player ``index`` of ``seed``, of one of ``entries``: depends on nothing else,
    so a longer list extends a shorter one."""
    # A str seed is hashed with SHA-512 by Random: stable across processes and
    # Python runs (unlike hash()), and unrelated streams for neighbouring indexes.
    rng = random.Random(f"croupier.players:{seed}:{index}")
    entry = entries[_pick(rng, cum)]
    crypto = entry.currency in CRYPTO_CURRENCIES
    risk = RISK_STYLES[_pick(rng, _RISK_CUM[crypto])]
    base = STAKE_LADDERS[entry.currency]
    ladder = _ladder(rng, base, risk)
    deposit = base[0] * _DEPOSIT_MULTIPLES[_pick(rng, _DEPOSIT_CUM[risk])]
    # A third of players come back with something left from last time.
    bankroll = deposit + (rng.randrange(deposit) if rng.randrange(3) == 0 else 0)
    games = _preferences(rng, entry.games)
    (think_lo, think_hi), (rounds_lo, rounds_hi) = _PACE[games[0]]
    lo = think_lo * rng.randint(80, 150) // 100
    hi = max(lo + think_lo, think_hi * rng.randint(60, 140) // 100)
    # Most sessions are short, a few long: the smaller of two uniform draws.
    rounds = min(rng.randint(rounds_lo, rounds_hi), rng.randint(rounds_lo, rounds_hi))
    if risk == "low":
        rounds += rounds // 2  # small stakes stretch a session
    name = _name(entry.locale, rng.getrandbits(64))
    return PlayerProfile(
        player_id=f"{id_prefix}-{seed}-{index:05d}",
        name=name,
        locale=entry.locale,
        country=entry.country,
        currency=entry.currency,
        language=entry.language,
        bankroll=bankroll,
        stake_ladder=_shared(ladder),
        preferred_games=_shared(games),
        session_rounds=rounds,
        think_time_ms=_shared((lo, hi)),
        risk=risk,
    )


_SHARED: dict[tuple[Any, ...], tuple[Any, ...]] = {}
"""Every distinct ladder, game preference and think range made so far, once: 10,000 players share a few
hundred of them, and a profile holds ~200 bytes less than with tuples of its own (issue 17: an idle player)."""

T = TypeVar("T", bound=tuple[Any, ...])


def _shared(value: T) -> T:
    """The one equal tuple already made (``setdefault`` is atomic: players may be made on threads)."""
    return _SHARED.setdefault(value, value)  # type: ignore[return-value]


def make_players(
    seed: int,
    count: int,
    *,
    currencies: Sequence[str] | None = None,
    id_prefix: str = "p",
) -> list[PlayerProfile]:
    """Make ``count`` players, a pure function of its arguments.

    Without ``currencies`` the population follows the weights of
    :data:`LOCALES` (about one player in eight pays in crypto).  With
    ``currencies``, player ``i`` pays in ``currencies[i % len(currencies)]``
    (duplicates ignored), so every listed currency appears once ``count``
    reaches their number, whatever the weights.

    Player ``i`` depends only on ``(seed, i, currencies, id_prefix)``, so a
    larger ``count`` extends a smaller one; ids are ``f"{id_prefix}-{seed}-{i:05d}"``,
    unique within a call and stable across runs.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if currencies is None:
        return [_profile(seed, i, LOCALES, _ALL_CUM, id_prefix) for i in range(count)]
    codes = list(dict.fromkeys(currency(c).code for c in currencies))  # refuses unknown codes
    if not codes:
        raise ValueError("currencies must name at least one currency (or be None for the default mix)")
    return [_profile(seed, i, *_BY_CURRENCY[codes[i % len(codes)]], id_prefix) for i in range(count)]


class PlayerRandom(random.Random):
    """A player's own stream, drawn exactly as :class:`random.Random` draws it, ~330 bytes lighter:
    ``gauss_next`` lives in a slot, so no instance dict is made (every seated player keeps one)."""

    __slots__ = ("gauss_next",)


# --------------------------------------------------------------------------- behaviour


def choose_stake(profile: PlayerProfile, rng: random.Random, balance: int) -> int | None:
    """The next stake for ``balance`` (minor units), or ``None``: the player leaves.

    A player leaves only when even their smallest stake is unaffordable; a
    stake never exceeds the balance.  Within what is affordable the player keeps
    a reserve of bets (50 low, 20 medium, 5 high) and, in that range, leans to
    the bottom (low), the middle (medium) or the top (high).  Below the reserve
    they grind on at the smallest stake — except high-risk players, who chase
    losses now and then with the largest stake they can still pay.
    """
    ladder = profile.stake_ladder
    affordable = bisect_right(ladder, balance)
    if affordable == 0:
        return None
    risk = profile.risk
    if risk == "high" and balance < profile.bankroll // 2 and rng.randrange(8) == 0:
        return ladder[affordable - 1]
    reserve = _RESERVE_BETS[risk]
    n = max(1, bisect_right(ladder, balance // reserve))
    if risk == "low":
        weights = [1 << (n - 1 - i) for i in range(n)]
    elif risk == "medium":
        weights = [1 + min(i, n - 1 - i) for i in range(n)]
    else:
        weights = [1 << i for i in range(n)]
    return ladder[_pick(rng, tuple(accumulate(weights)))]


def think_time(profile: PlayerProfile, rng: random.Random) -> int:
    """Milliseconds before the next round, within ``profile.think_time_ms``.

    The mean of two uniform draws: pauses cluster around the middle of the
    player's range, as a human's do, while both ends still occur.
    """
    lo, hi = profile.think_time_ms
    return lo + (rng.randint(0, hi - lo) + rng.randint(0, hi - lo)) // 2


def choose_game_kind(profile: PlayerProfile, rng: random.Random) -> GameKind:
    """The kind of the next game: mostly the favourite, sometimes the others (12:4:2:1)."""
    games = profile.preferred_games
    return games[_pick(rng, _POSITION_CUM[len(games) - 1])]
