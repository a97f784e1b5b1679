"""Simulated players are reproducible, realistic per currency, and never bet what they lack.

Load tests are replayed from their seed, so determinism is checked first; the
stake tables are checked against the currency exponents of money.py because a
ladder written in the wrong scale (50 meaning KWD 50 instead of 0.050) would
silently send thousand-fold stakes to a wallet.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from dataclasses import replace

import pytest
from faker.config import AVAILABLE_LOCALES
from hypothesis import given
from hypothesis import strategies as st

from simulator.play.players import (
    CRYPTO_CURRENCIES,
    GAME_KINDS,
    LOCALES,
    RISK_STYLES,
    STAKE_LADDERS,
    PlayerProfile,
    choose_game_kind,
    choose_stake,
    make_players,
    think_time,
)
from simulator.protocol.money import CURRENCIES, Money, UnknownCurrency

ALL = sorted(CURRENCIES)
seeds = st.integers(min_value=-(2**63), max_value=2**63)
counts = st.integers(min_value=0, max_value=40)
currency_lists = st.lists(st.sampled_from(ALL), min_size=1, max_size=len(ALL), unique=True)

# The lobby ranges in major units, written independently of players.py so that
# a ladder in the wrong minor-unit scale fails here.
EXPECTED_RANGE = {
    "EUR": ("0.10", "5.00"),
    "USD": ("0.10", "10.00"),
    "GBP": ("0.10", "5.00"),
    "BRL": ("0.50", "25.00"),
    "TRY": ("2.00", "100.00"),
    "INR": ("10.00", "500.00"),
    "JPY": ("10", "500"),
    "KRW": ("100", "5000"),
    "CLP": ("100", "5000"),
    "KWD": ("0.050", "2.000"),
    "BHD": ("0.050", "2.000"),
    "BTC": ("0.00001", "0.001"),
    "ETH": ("0.0001", "0.01"),
    "USDT": ("0.10", "5.000000"),
}


def check_profile(p: PlayerProfile) -> None:
    """Every invariant a single profile must satisfy, whatever the seed."""
    assert p.currency in CURRENCIES
    assert isinstance(p.name, str) and p.name.strip() == p.name and p.name
    assert (p.locale, p.country, p.currency, p.language) in {
        (e.locale, e.country, e.currency, e.language) for e in LOCALES
    }
    # Money is int, never bool or float.
    assert type(p.bankroll) is int and all(type(s) is int for s in p.stake_ladder)
    base = STAKE_LADDERS[p.currency]
    ladder = p.stake_ladder
    assert len(ladder) >= 3 and all(s > 0 for s in ladder)
    start = base.index(ladder[0])
    assert ladder == base[start : start + len(ladder)], "a contiguous run of the lobby ladder"
    assert p.bankroll >= ladder[0], "the player can afford at least one round"
    Money.of(p.bankroll, p.currency)  # a valid amount in its currency
    assert p.preferred_games and len(set(p.preferred_games)) == len(p.preferred_games)
    assert set(p.preferred_games) <= set(GAME_KINDS)
    assert type(p.session_rounds) is int and p.session_rounds > 0
    lo, hi = p.think_time_ms
    assert type(lo) is int and type(hi) is int and 0 < lo < hi
    assert p.risk in RISK_STYLES


# --------------------------------------------------------------------------- tables


def test_tables_cover_every_currency() -> None:
    assert set(STAKE_LADDERS) == set(CURRENCIES)
    assert {e.currency for e in LOCALES} == set(CURRENCIES)
    assert CRYPTO_CURRENCIES <= set(CURRENCIES)


@pytest.mark.parametrize("code", ALL)
def test_stake_ladders_are_in_the_currency_scale(code: str) -> None:
    ladder = STAKE_LADDERS[code]
    assert all(type(s) is int and s > 0 for s in ladder)
    assert list(ladder) == sorted(set(ladder)), "strictly ascending"
    assert len(ladder) >= 6, "room for low, medium and high windows"
    lo, hi = EXPECTED_RANGE[code]
    assert ladder[0] == Money.from_decimal(lo, code).minor
    assert ladder[-1] == Money.from_decimal(hi, code).minor


def test_stake_ladders_are_distinct_per_currency() -> None:
    # JPY's (10, …, 500) and EUR's (10, …, 500) minor units are ¥10 and €0.10:
    # compare what a player sees, in major units.
    shown = {code: tuple(Money.of(s, code).to_decimal() for s in ladder) for code, ladder in STAKE_LADDERS.items()}
    assert len(set(shown.values())) == len(shown)


def test_locale_entries_are_well_formed() -> None:
    for e in LOCALES:
        assert e.locale in AVAILABLE_LOCALES
        assert re.fullmatch(r"[A-Z]{2}", e.country)
        assert re.fullmatch(r"[a-z]{2}(-[A-Z]{2})?", e.language)
        assert e.weight > 0 and len(e.games) == len(GAME_KINDS) and all(w >= 0 for w in e.games)
    crypto_locales = {e.locale for e in LOCALES if e.currency in CRYPTO_CURRENCIES}
    fiat_locales = {e.locale for e in LOCALES if e.currency not in CRYPTO_CURRENCIES}
    assert crypto_locales <= fiat_locales, "crypto players are a share of fiat markets' players"


# --------------------------------------------------------------------------- make_players


def test_same_seed_same_players_different_seed_different() -> None:
    a = make_players(7, 200)
    assert a == make_players(7, 200)
    b = make_players(8, 200)
    assert [p.name for p in a] != [p.name for p in b]
    assert [(p.currency, p.bankroll) for p in a] != [(p.currency, p.bankroll) for p in b]


@given(seeds, counts)
def test_deterministic_and_prefix_stable(seed: int, count: int) -> None:
    players = make_players(seed, count)
    assert players == make_players(seed, count)
    assert make_players(seed, count // 2) == players[: count // 2]


@given(seeds, counts, st.none() | currency_lists, st.sampled_from(["p", "bot", "x-y"]))
def test_every_profile_is_valid(seed: int, count: int, currencies: list[str] | None, prefix: str) -> None:
    players = make_players(seed, count, currencies=currencies, id_prefix=prefix)
    assert len(players) == count
    assert len({p.player_id for p in players}) == count
    for i, p in enumerate(players):
        assert p.player_id == f"{prefix}-{seed}-{i:05d}"
        check_profile(p)
        if currencies is not None:
            assert p.currency == currencies[i % len(currencies)]


@given(seeds, currency_lists, st.integers(min_value=0, max_value=3))
def test_listed_currencies_all_appear(seed: int, currencies: list[str], extra: int) -> None:
    players = make_players(seed, len(currencies) + extra, currencies=currencies)
    assert {p.currency for p in players} == set(currencies)


def test_all_currencies_appear_when_asked() -> None:
    players = make_players(3, len(ALL), currencies=ALL)
    assert sorted(p.currency for p in players) == ALL


def test_duplicate_currencies_are_ignored() -> None:
    players = make_players(1, 4, currencies=["EUR", "EUR", "JPY"])
    assert [p.currency for p in players] == ["EUR", "JPY", "EUR", "JPY"]


@given(seeds)
def test_different_seeds_differ(seed: int) -> None:
    assert [p.name for p in make_players(seed, 20)] != [p.name for p in make_players(seed + 1, 20)]


def test_default_mix_is_realistic() -> None:
    players = make_players(11, 5_000)
    by_currency = Counter(p.currency for p in players)
    assert set(by_currency) == set(CURRENCIES)
    assert by_currency.most_common(1)[0][0] == "EUR"
    crypto = sum(by_currency[c] for c in CRYPTO_CURRENCIES)
    assert 0.05 * len(players) < crypto < 0.25 * len(players)
    assert set(Counter(p.risk for p in players)) == set(RISK_STYLES)
    assert set(Counter(p.preferred_games[0] for p in players)) == set(GAME_KINDS)
    # Names come from the player's locale: Japanese and Korean names are not Latin.
    assert any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", p.name) for p in players if p.locale == "ja_JP")
    assert any(re.search(r"[\uac00-\ud7af]", p.name) for p in players if p.locale == "ko_KR")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        make_players(1, -1)
    with pytest.raises(ValueError):
        make_players(1, 3, currencies=[])
    with pytest.raises(UnknownCurrency):
        make_players(1, 3, currencies=["EUR", "XXX"])


def test_global_random_is_untouched() -> None:
    random.seed(1234)
    state = random.getstate()
    players = make_players(5, 100, currencies=ALL)
    rng = random.Random(0)
    for p in players:
        choose_stake(p, rng, p.bankroll)
        think_time(p, rng)
        choose_game_kind(p, rng)
    assert random.getstate() == state


def test_threads_get_the_same_players() -> None:
    expected = make_players(21, 300)
    results: list[list[PlayerProfile]] = []

    def work() -> None:
        results.append(make_players(21, 300))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


# --------------------------------------------------------------------------- behaviour


@given(seeds, st.sampled_from(ALL), st.integers(min_value=0, max_value=2**62), st.integers())
def test_choose_stake_never_exceeds_balance(seed: int, code: str, balance: int, rng_seed: int) -> None:
    (p,) = make_players(seed, 1, currencies=[code])
    rng = random.Random(rng_seed)
    for b in (balance, balance % (p.bankroll + 1), p.stake_ladder[0] - 1, p.stake_ladder[0], p.bankroll):
        stake = choose_stake(p, rng, b)
        if b < p.stake_ladder[0]:
            assert stake is None
        else:
            assert stake is not None and type(stake) is int
            assert stake in p.stake_ladder and stake <= b


@given(seeds, st.integers())
def test_a_session_runs_until_the_player_leaves(seed: int, rng_seed: int) -> None:
    """Play sessions with random outcomes: stakes stay within the balance until the player leaves."""
    rng = random.Random(rng_seed)
    for p in make_players(seed, 5):
        balance = p.bankroll
        for _ in range(p.session_rounds):
            stake = choose_stake(p, rng, balance)
            if stake is None:
                assert balance < p.stake_ladder[0]
                break
            assert 0 < stake <= balance
            balance -= stake
            balance += stake * rng.choice((0, 0, 0, 1, 2, 5))  # integer payouts only
        lo, hi = p.think_time_ms
        assert lo <= think_time(p, rng) <= hi
        assert choose_game_kind(p, rng) in p.preferred_games


def test_risk_style_drives_stake_size() -> None:
    base = STAKE_LADDERS["EUR"]
    (template,) = make_players(1, 1, currencies=["EUR"])
    balance = 1_000_000  # €10,000: every style can afford every stake with its reserve
    means = {}
    for risk in RISK_STYLES:
        p = replace(template, stake_ladder=base, risk=risk)
        rng = random.Random(42)
        means[risk] = sum(choose_stake(p, rng, balance) or 0 for _ in range(2_000)) // 2_000
    assert means["low"] < means["medium"] < means["high"]


def test_low_risk_keeps_a_reserve() -> None:
    (template,) = make_players(1, 1, currencies=["EUR"])
    p = replace(template, stake_ladder=STAKE_LADDERS["EUR"], risk="low")
    rng = random.Random(3)
    # €10: 50 bets of at most €0.20; the player never jumps to €5.
    assert {choose_stake(p, rng, 1_000) for _ in range(500)} <= {10, 20}


def test_favourite_game_dominates() -> None:
    (template,) = make_players(1, 1)
    p = replace(template, preferred_games=("live", "slot", "crash", "roulette"))
    rng = random.Random(9)
    seen = Counter(choose_game_kind(p, rng) for _ in range(2_000))
    assert set(seen) == set(GAME_KINDS)
    assert seen.most_common(1)[0][0] == "live"
    assert seen["live"] > 1_000


def test_think_time_spans_the_range() -> None:
    (template,) = make_players(1, 1)
    p = replace(template, think_time_ms=(1_000, 3_000))
    rng = random.Random(5)
    pauses = [think_time(p, rng) for _ in range(2_000)]
    assert min(pauses) >= 1_000 and max(pauses) <= 3_000
    assert min(pauses) < 1_300 and max(pauses) > 2_700
