"""The game models pay what they declare, in whole minor units, reproducibly.

Every declared RTP is checked against a simulation with a tolerance that follows
from the variance: |mean return − RTP| < 4.5·σ/√N, σ the per-round return's
standard deviation (exact where the game allows, from the sample otherwise).
A correct game fails such a check about once in 150 000 runs; the seeds are
fixed, so a run is reproducible anyway.  The slot's exact maths is checked
against brute force on small slots, and money properties with Hypothesis.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.play.games import catalog
from simulator.play.games.base import Game, Payout, RoundResult, SinglePlayerGame, Stake, floor_fraction
from simulator.play.games.crash import (
    MAX_MULTIPLIER,
    MIN_TARGET,
    CrashGame,
    cashout_amount,
    draw_crash_point,
    elapsed_ms,
    expected_return,
    format_multiplier,
    random_target,
    settle,
)
from simulator.play.games.jackpot import BP, JackpotGame, JackpotTerms, ProgressiveJackpot
from simulator.play.games.live import BettingClosed, LiveRouletteTable
from simulator.play.games.roulette import (
    BET_TYPES,
    Bet,
    BetType,
    EuropeanRoulette,
    bet_moments,
    legal_selections,
    random_bets,
    settle_bets,
)
from simulator.play.games.slot import (
    CROUPIER_STARS,
    CROUPIER_STARS_HIT_FREQUENCY,
    CROUPIER_STARS_RTP,
    PAYLINES_10,
    Slot,
    brute_force_stats,
    exact_rtp,
    exact_stats,
    expected_free_spins,
)
from simulator.play.players import GAME_KINDS, STAKE_LADDERS
from simulator.protocol.calls import WinReason

# --------------------------------------------------------------------------- helpers


def assert_rtp(paid: Sequence[int], stake: int, rtp: Fraction, variance: Fraction | None = None) -> float:
    """|mean − rtp| < 4.5·σ/√N for per-round returns ``paid[i] / stake``; returns the deviation in σ.

    ``variance`` is the exact variance of one round's return; without it, the sample's.
    """
    n, total = len(paid), sum(paid)
    mean = Fraction(total, n * stake)
    if variance is None:
        squares = sum(p * p for p in paid)
        variance = Fraction(squares * n - total * total, n * (n - 1) * stake * stake)
    sigma_of_mean = math.sqrt(variance / n)
    deviation = abs(float(mean - rtp)) / sigma_of_mean
    assert deviation < 4.5, f"mean return {float(mean):.5f} vs RTP {float(rtp):.5f}: {deviation:.2f} σ off"
    return deviation


def assert_rate(hits: int, n: int, p: Fraction) -> None:
    """A binomial count within 4.5 σ of ``n·p``."""
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(hits - n * p) < 4.5 * sigma, f"{hits} hits in {n}, expected {float(n * p):.1f} ± {sigma:.1f}"


def assert_money(result: RoundResult) -> None:
    """Stakes positive, payouts non-negative: all plain ints."""
    assert result.stakes
    for s in result.stakes:
        assert type(s.amount) is int and s.amount >= 1
    for p in result.payouts:
        assert type(p.amount) is int and p.amount >= 0
        assert isinstance(p.reason, WinReason)
    assert result.total_staked == sum(s.amount for s in result.stakes)
    assert result.total_paid == sum(p.amount for p in result.payouts)


seeds = st.integers(min_value=0, max_value=2**64)

# --------------------------------------------------------------------------- base


def test_stake_and_payout_are_whole_minor_units() -> None:
    with pytest.raises(TypeError):
        Stake(True, "x")
    with pytest.raises(TypeError):
        Payout(1.5, WinReason.REGULAR, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Stake(0, "x")
    with pytest.raises(ValueError):
        Payout(-1, WinReason.REGULAR, "x")
    r = RoundResult("g", (Stake(10, "a"), Stake(5, "b")), (Payout(30, WinReason.REGULAR, "w"),))
    assert (r.total_staked, r.total_paid, r.net, r.is_win) == (15, 30, 15, True)
    assert floor_fraction(Fraction(-7, 2)) == -4 and floor_fraction(Fraction(7, 2)) == 3


# --------------------------------------------------------------------------- catalog


def test_catalog_lists_one_game_of_each_kind() -> None:
    games = catalog.all()
    assert [g.game_id for g in games] == ["croupier-stars", "roulette-eu", "live-roulette", "crash-x"]
    assert {g.kind for g in games} == set(GAME_KINDS)
    for g in games:
        assert isinstance(g, Game)
        assert catalog.get(g.game_id) is g
        assert catalog.of_kind(g.kind) == (g,)
        assert isinstance(g.declared_rtp, Fraction) and Fraction(9, 10) < g.declared_rtp < 1
    assert isinstance(catalog.get("croupier-stars"), SinglePlayerGame)
    with pytest.raises(catalog.UnknownGame):
        catalog.get("nope")


@pytest.mark.parametrize("game_id", list(catalog.GAMES))
def test_same_seed_same_rounds(game_id: str) -> None:
    game = catalog.get(game_id)
    runs = [[game.play_round(random.Random(f"det:{game_id}"), 1_000) for _ in range(300)] for _ in range(2)]
    assert runs[0] == runs[1]
    other = [game.play_round(random.Random(f"other:{game_id}"), 1_000) for _ in range(300)]
    assert other != runs[0]


@given(st.sampled_from(list(catalog.GAMES)), st.sampled_from(sorted(STAKE_LADDERS)), seeds, st.data())
def test_every_game_pays_whole_non_negative_amounts(game_id: str, code: str, seed: int, data: st.DataObject) -> None:
    stake = data.draw(st.sampled_from(STAKE_LADDERS[code]))
    rng = random.Random(seed)
    for _ in range(20):
        result = catalog.get(game_id).play_round(rng, stake)
        assert_money(result)
        assert result.game_id == game_id
        assert result.total_staked <= stake


# --------------------------------------------------------------------------- slot


def test_slot_exact_rtp_is_the_declared_one() -> None:
    stats = exact_stats()
    assert exact_rtp() == CROUPIER_STARS.declared_rtp == CROUPIER_STARS_RTP == stats.rtp
    assert Fraction(95, 100) <= stats.rtp <= Fraction(97, 100)
    assert stats.hit_frequency == CROUPIER_STARS_HIT_FREQUENCY
    assert stats.rtp == stats.base_rtp + stats.trigger_probability * stats.expected_free_spins * 2 * stats.base_rtp
    # Free spins are a real share of the return, and trigger about once in 200 spins.
    assert Fraction(5, 100) < stats.free_spin_rtp < Fraction(15, 100)
    assert Fraction(1, 300) < stats.trigger_probability < Fraction(1, 100)


def test_slot_refuses_a_declared_rtp_that_is_not_exact() -> None:
    with pytest.raises(ValueError, match="not the exact RTP"):
        Slot(
            "bad",
            "bad",
            reels=CROUPIER_STARS.reels,
            paylines=PAYLINES_10,
            paytable=CROUPIER_STARS.paytable,
            scatter_pays=CROUPIER_STARS.scatter_pays,
            wild="WILD",
            scatter="STAR",
            free_spin_multiplier=2,
            declared_rtp=Fraction(96, 100),
        )


def _toy_slot(seed: int) -> Slot:
    """A small random slot (≤ 8⁵ screens) whose every combination brute force can visit.

    Scatters may sit next to each other, so one reel can show two: the exact maths
    must not assume otherwise."""
    rng = random.Random(seed)
    reels = []
    for i in range(5):
        weighted = ["A"] * 3 + ["B"] * 4 + ["C"] * 3 + ["D"] * 2 + ["S"] + (["W"] if 1 <= i <= 3 else [])
        reels.append([rng.choice(weighted) for _ in range(rng.randint(5, 8))])
    return Slot(
        f"toy-{seed}",
        "toy",
        reels=reels,
        paylines=PAYLINES_10,
        paytable={"A": (5, 20, 100), "B": (2, 5, 20), "C": (1, 3, 10), "D": (0, 0, 0)},
        scatter_pays={3: 2, 4: 10},
        wild="W",
        scatter="S",
        free_spins=3,
        free_spins_cap=9,
        free_spin_multiplier=3,
    )


@pytest.mark.parametrize("seed", range(4))
def test_slot_exact_maths_equals_brute_force(seed: int) -> None:
    slot = _toy_slot(seed)
    stats = exact_stats(slot)
    assert brute_force_stats(slot) == (stats.base_rtp, stats.trigger_probability, stats.hit_frequency)
    assert slot.declared_rtp == stats.rtp


def test_expected_free_spins_recursion() -> None:
    assert expected_free_spins(Fraction(0), 10, 50) == 10
    assert expected_free_spins(Fraction(1), 10, 50) == 50
    assert expected_free_spins(Fraction(1, 2), 10, 10) == 10
    # One spin, one retrigger at most: 1 + p.
    assert expected_free_spins(Fraction(1, 3), 1, 2) == Fraction(4, 3)
    values = [expected_free_spins(Fraction(k, 20), 10, 50) for k in range(21)]
    assert values == sorted(values)
    # Against a simulation of the retrigger process alone (p large, so the cap matters).
    p = Fraction(1, 8)
    rng = random.Random(7)
    n = 20_000
    counts = []
    for _ in range(n):
        awarded = left = 10
        played = 0
        while left:
            left -= 1
            played += 1
            if rng.randrange(8) == 0:
                extra = min(10, 50 - awarded)
                awarded += extra
                left += extra
        counts.append(played)
    assert_rtp(counts, 1, expected_free_spins(p, 10, 50))


def test_slot_simulation_matches_exact_rtp_and_hit_frequency() -> None:
    rng = random.Random("croupier-stars")
    n, stake = 150_000, 10
    paid: list[int] = []
    hits = 0
    for _ in range(n):
        r = CROUPIER_STARS.play(rng, stake)
        paid.append(r.total_paid)
        hits += r.detail["line_wins"] != () or r.detail["scatters"] >= 3  # type: ignore[operator]
    assert_rtp(paid, stake, CROUPIER_STARS.declared_rtp)
    assert_rate(hits, n, CROUPIER_STARS_HIT_FREQUENCY)


def test_slot_wagers_whole_line_bets() -> None:
    rng = random.Random(1)
    r = CROUPIER_STARS.play(rng, 25)
    assert r.stakes == (Stake(20, "spin"),) and r.detail["line_bet"] == 2 and r.detail["unwagered"] == 5
    with pytest.raises(ValueError):
        CROUPIER_STARS.play(rng, 9)
    with pytest.raises(TypeError):
        CROUPIER_STARS.play(rng, 10.0)  # type: ignore[arg-type]


def test_slot_screen_and_line_scoring() -> None:
    """A hand-built screen: a middle line of SEVEN, WILD, SEVEN, SEVEN, ACE pays 4 SEVENs."""
    reels = CROUPIER_STARS.reels
    want = ["SEVEN", "WILD", "SEVEN", "SEVEN", "ACE"]
    # Stops putting each wanted symbol in the middle row (row 1 is stop + 1).
    stops = tuple((reels[i].index(s) - 1) % len(reels[i]) for i, s in enumerate(want))
    assert CROUPIER_STARS.window(stops)[1] == tuple(want)
    spin = CROUPIER_STARS._evaluate(stops)
    assert (0, "SEVEN", 4, 250) in spin.line_wins


@given(st.integers(min_value=10, max_value=10**9), seeds)
def test_slot_payouts_are_whole_line_bets(stake: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(30):
        r = CROUPIER_STARS.play(rng, stake)
        assert_money(r)
        line_bet = stake // 10
        assert r.total_staked == stake - stake % 10
        assert all(p.amount > 0 and p.amount % line_bet == 0 for p in r.payouts)
        assert all(p.reason is WinReason.FREE_SPIN for p in r.payouts[1:])
        assert 0 <= r.detail["free_spins"] <= 50  # type: ignore[operator]
        free = sum(p.amount for p in r.payouts if p.reason is WinReason.FREE_SPIN)
        assert free == r.detail["free_spin_win"]


def test_slot_free_spins_feature_happens_and_pays_free_spin() -> None:
    rng = random.Random(3)
    features = [r for r in (CROUPIER_STARS.play(rng, 100) for _ in range(5_000)) if r.detail["free_spins"]]
    assert features
    for r in features:
        assert r.detail["scatters"] >= 3  # type: ignore[operator]
        assert r.payouts[0].reason is WinReason.REGULAR  # 3+ scatters pay in the base spin
        assert r.detail["free_spins"] in (10, 20, 30, 40, 50)


# --------------------------------------------------------------------------- roulette

_RED = {1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36}
_ODDS = {"straight": 35, "split": 17, "street": 11, "corner": 8, "line": 5,
         "dozen": 2, "column": 2, "red_black": 1, "odd_even": 1, "low_high": 1}  # fmt: skip


def _oracle_wins(bet_type: str, selection: object, n: int) -> bool:
    """Whether a bet wins, from the rules of the table rather than the module's layout."""
    if isinstance(selection, int) and bet_type == "straight":
        return n == selection
    if bet_type in ("split", "street", "corner", "line"):
        return n in selection  # type: ignore[operator]
    if bet_type == "dozen":
        return 12 * selection - 11 <= n <= 12 * selection  # type: ignore[operator]
    if bet_type == "column":
        return n > 0 and n % 3 == selection % 3  # type: ignore[operator]
    if bet_type == "red_black":
        return n > 0 and (n in _RED) == (selection == "red")
    if bet_type == "odd_even":
        return n > 0 and n % 2 == (selection == "odd")
    return (1 <= n <= 18) if selection == "low" else (19 <= n <= 36)


def test_layout_has_every_bet_of_a_european_table() -> None:
    sizes = {t: len(legal_selections(t)) for t in BET_TYPES}
    assert sizes == {"straight": 37, "split": 60, "street": 14, "corner": 23, "line": 11,
                     "dozen": 3, "column": 3, "red_black": 2, "odd_even": 2, "low_high": 2}  # fmt: skip
    # Inside bets are geometric: splits are neighbours, corners 2×2 blocks, lines two rows.
    for split in legal_selections("split"):
        a, b = cast(tuple[int, int], split)
        assert (a == 0 and b in (1, 2, 3)) or (a > 0 and (b - a == 3 or (b - a == 1 and a % 3)))
    for corner in legal_selections("corner"):
        c = cast(tuple[int, int, int, int], corner)
        assert c == (0, 1, 2, 3) or (c[1] - c[0], c[2] - c[0], c[3] - c[0]) == (1, 3, 4)


@given(st.sampled_from(BET_TYPES), st.data(), st.integers(min_value=1, max_value=10**12), st.integers(0, 36))
def test_winning_bets_are_paid_exactly_at_their_odds(
    bet_type: BetType, data: st.DataObject, amount: int, number: int
) -> None:
    selection = data.draw(st.sampled_from(legal_selections(bet_type)))
    bet = Bet(bet_type, selection, amount)
    result = settle_bets("roulette-eu", [bet], number, {})
    assert result.stakes == (Stake(amount, bet.label),)
    if _oracle_wins(bet_type, selection, number):
        assert result.payouts == (Payout(amount * (_ODDS[bet_type] + 1), WinReason.REGULAR, bet.label),)
    else:
        assert result.payouts == ()
    # Every bet on the layout returns exactly 36/37.
    mean, _ = bet_moments([bet])
    assert mean == Fraction(36, 37) * amount


def test_bets_are_validated_and_normalised() -> None:
    assert Bet(BetType.SPLIT, (20, 17), 5).selection == (17, 20)
    assert Bet(BetType.STRAIGHT, (17,), 5) == Bet(BetType.STRAIGHT, 17, 5)
    assert EuropeanRoulette().play(random.Random(1), [("red_black", "red", 10), ("dozen", 2, 5)]).total_staked == 15
    for bad in [("split", (1, 5), 1), ("straight", 37, 1), ("corner", (1, 2, 3, 4), 1), ("dozen", 4, 1),
                ("red_black", "Red", 1), ("dozen", True, 1), ("straight", 5, 0), ("straight", 5, 1.0),
                ("line", (1, 2, 3, 4, 5, 6, 7), 1), ("street", "1-2-3", 1)]:  # fmt: skip
        with pytest.raises(ValueError):
            Bet(BetType(bad[0]), bad[1], bad[2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EuropeanRoulette().play(random.Random(1), [])


@given(st.integers(min_value=1, max_value=10**12), seeds, st.integers(min_value=1, max_value=12))
def test_random_bets_spend_exactly_the_stake(total: int, seed: int, max_bets: int) -> None:
    bets = random_bets(random.Random(seed), total, max_bets=max_bets)
    assert sum(b.amount for b in bets) == total
    assert 1 <= len(bets) <= max_bets and all(b.amount >= 1 for b in bets)
    assert len({(b.bet_type, b.selection) for b in bets}) == len(bets)


def test_roulette_simulation_matches_36_over_37() -> None:
    game = EuropeanRoulette()
    bets = [Bet(BetType.STRAIGHT, 17, 10), Bet(BetType.SPLIT, (0, 3), 10), Bet(BetType.CORNER, (25, 26, 28, 29), 20),
            Bet(BetType.RED_BLACK, "black", 50), Bet(BetType.DOZEN, 3, 30), Bet(BetType.LINE, (1, 2, 3, 4, 5, 6), 10)]  # fmt: skip
    stake = sum(b.amount for b in bets)
    mean, variance = bet_moments(bets)
    assert mean == Fraction(36, 37) * stake
    rng = random.Random("roulette")
    paid = [game.play(rng, bets).total_paid for _ in range(100_000)]
    assert_rtp(paid, stake, game.declared_rtp, variance / stake**2)


def test_roulette_realistic_rounds_return_36_over_37() -> None:
    game = catalog.get("roulette-eu")
    rng = random.Random("roulette-mix")
    paid = [game.play_round(rng, 500).total_paid for _ in range(40_000)]
    assert_rtp(paid, 500, game.declared_rtp)


# --------------------------------------------------------------------------- live


def test_live_round_settles_every_player_together() -> None:
    table = LiveRouletteTable(max_bets_per_player=5, max_bet=10_000)
    rng = random.Random("live")
    live = table.open_round(rng)
    placed: dict[str, list[Bet]] = {}
    for i in range(200):
        player = f"p{i}"
        for bet in random_bets(rng, 100 * (1 + i % 7), max_bets=5):
            placed.setdefault(player, []).append(live.place(player, bet))
    assert live.total_staked == sum(100 * (1 + i % 7) for i in range(200))
    live.close()
    with pytest.raises(BettingClosed):
        live.place("late", ("red_black", "red", 10))
    results = live.settle(rng)
    assert live.number is not None and set(results) == set(placed)
    for player, result in results.items():
        assert result == settle_bets(table.game_id, placed[player], live.number, result.detail)
        assert result.detail["round_id"] == live.round_id and result.detail["number"] == live.number
    with pytest.raises(BettingClosed):
        live.settle(rng)


def test_live_table_limits() -> None:
    table = LiveRouletteTable(min_bet=10, max_bet=1_000, max_bets_per_player=2)
    live = table.open_round(random.Random(1))
    with pytest.raises(ValueError):
        live.place("a", ("straight", 1, 5))
    with pytest.raises(ValueError):
        live.place("a", ("straight", 1, 1_001))
    live.place("a", ("straight", 1, 10))
    live.place("a", ("straight", 2, 10))
    with pytest.raises(ValueError):
        live.place("a", ("straight", 3, 10))


def test_live_rounds_return_36_over_37() -> None:
    """Players at one table share the number, so the unit of the test is the table round."""
    table = catalog.get("live-roulette")
    assert isinstance(table, LiveRouletteTable)
    rng = random.Random("live-rtp")
    players, stake = 12, 200
    paid = []
    for _ in range(4_000):
        live = table.open_round(rng)
        for p in range(players):
            for bet in random_bets(rng, stake):
                live.place(f"p{p}", bet)
        paid.append(sum(r.total_paid for r in live.settle(rng).values()))
    assert_rtp(paid, players * stake, table.declared_rtp)


def test_live_same_seed_same_settlement() -> None:
    def run(seed: str) -> list[dict[str, RoundResult]]:
        rng, table, out = random.Random(seed), LiveRouletteTable(), []
        for _ in range(50):
            live = table.open_round(rng)
            for p in range(10):
                for bet in random_bets(rng, 1_000):
                    live.place(f"p{p}", bet)
            out.append(live.settle(rng))
        return out

    assert run("x") == run("x") != run("y")


# --------------------------------------------------------------------------- crash


@given(
    st.integers(min_value=1, max_value=10**15), st.integers(MIN_TARGET, MAX_MULTIPLIER), st.integers(0, MAX_MULTIPLIER)
)
def test_crash_pays_floor_of_stake_times_target_iff_it_cashes_out_first(stake: int, target: int, crash: int) -> None:
    result = settle("crash-x", [(stake, target)], crash)
    if crash >= target:
        assert [p.amount for p in result.payouts] == [stake * target // 100]
        assert result.payouts[0].amount == floor_fraction(Fraction(stake) * Fraction(target, 100))
    else:
        assert result.payouts == ()
    assert result.detail["crash_point"] == max(crash, 100)


def test_crash_points_have_the_exact_tail() -> None:
    rng = random.Random("crash-tail")
    n = 200_000
    points = [draw_crash_point(rng) for _ in range(n)]
    assert min(points) >= 99 and max(points) <= MAX_MULTIPLIER
    for t in (100, 101, 150, 200, 1_000, 10_000):
        assert_rate(sum(c >= t for c in points), n, Fraction(99, t))
    assert_rate(sum(c < 100 for c in points), n, Fraction(1, 100))


class _Bits(random.Random):
    """A Random whose getrandbits returns scripted values (to force the sampler to refine)."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(0)
        self.values = values

    def getrandbits(self, k: int) -> int:
        return self.values.pop(0)


@pytest.mark.parametrize("extra", [0, 2**31, 2**32 - 1])
def test_crash_sampler_refines_an_ambiguous_draw_exactly(extra: int) -> None:
    # U = a/2^64 straddles 99/150: the first 64 bits cannot tell 1.49x from 1.50x.
    a = 99 * 2**64 // 150
    assert 99 * 2**64 // (a + 1) != 99 * 2**64 // a
    got = draw_crash_point(_Bits([a, extra]))
    lo, hi = (99 << 96) // ((a << 32) + extra + 1), (99 << 96) // ((a << 32) + extra)
    assert lo == hi == got and got in (149, 150)


@pytest.mark.parametrize("target", [200, 150, 1_000])
def test_crash_simulation_returns_99_percent(target: int) -> None:
    game = CrashGame()
    stake = 100
    mean, variance = expected_return(stake, target)
    assert mean == Fraction(99, 100) * stake
    rng = random.Random(f"crash-{target}")
    paid = [game.play(rng, stake, target).total_paid for _ in range(60_000)]
    assert_rtp(paid, stake, game.declared_rtp, variance / stake**2)


def test_crash_realistic_targets_return_99_percent() -> None:
    game = catalog.get("crash-x")
    rng = random.Random("crash-mix")
    paid = [game.play_round(rng, 100).total_paid for _ in range(60_000)]
    assert_rtp(paid, 100, game.declared_rtp)


def test_crash_flooring_is_bounded_by_a_minor_unit() -> None:
    # 10 × 1.55 = 15.5 → 15 paid: the house keeps half a unit on each win.
    assert cashout_amount(10, 155) == 15
    mean, _ = expected_return(10, 155)
    assert mean == 15 * Fraction(99, 155) < Fraction(99, 100) * 10
    assert Fraction(99, 100) * 10 - mean < Fraction(99, 155)  # < one unit × P(win)
    assert format_multiplier(250) == "2.50x" and format_multiplier(101) == "1.01x"
    assert elapsed_ms(100) == 0 and 11_000 < elapsed_ms(200) < 12_000
    with pytest.raises(ValueError):
        CrashGame().play(random.Random(1), 100, 100)
    with pytest.raises(ValueError):
        CrashGame().play(random.Random(1), 0, 200)


def test_crash_shared_round() -> None:
    game = CrashGame()
    rng = random.Random("shared")
    live = game.open_round(rng)
    with pytest.raises(RuntimeError):
        _ = live.crash_point
    bets = {f"p{i}": [(100 + i, random_target(rng)), (50, 200)] for i in range(300)}
    for player, theirs in bets.items():
        for stake, target in theirs:
            live.place(player, stake, target)
    with pytest.raises(ValueError):
        live.place("p0", 10, 200)  # a third bet
    results = live.settle()
    point = live.crash_point
    assert set(results) == set(bets)
    for player, result in results.items():
        assert result == settle(game.game_id, bets[player], result.detail["crash_point"], live.round_id)  # type: ignore[arg-type]
        assert result.detail["crash_point"] == point
    events = live.cashouts()
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    assert sum(p.amount for _, _, p in events) == sum(r.total_paid for r in results.values())
    with pytest.raises(RuntimeError):
        live.settle()
    again = CrashGame().play_shared(random.Random("shared"), bets)
    assert again == results


def test_crash_random_targets_are_in_range() -> None:
    rng = random.Random(9)
    targets = [random_target(rng) for _ in range(10_000)]
    assert min(targets) >= MIN_TARGET and max(targets) <= 10_000


# --------------------------------------------------------------------------- jackpot


@given(
    st.integers(min_value=0, max_value=BP),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=10**6),
    st.lists(st.tuples(st.sampled_from(["EUR", "JPY", "BTC"]), st.integers(0, 10**6)), max_size=80),
    seeds,
)
def test_jackpot_pool_plus_paid_is_seed_plus_contributions(
    bp: int, seed_amount: int, stake_per_hit: int, rounds: list[tuple[str, int]], seed: int
) -> None:
    terms = {c: JackpotTerms(seed_amount, stake_per_hit) for c in ("EUR", "JPY", "BTC")}
    jackpot = ProgressiveJackpot("t", "Test", contribution_bp=bp, terms=terms)
    rng = random.Random(seed)
    contributed = {c: Fraction(0) for c in terms}
    paid = {c: 0 for c in terms}
    for code, stake in rounds:
        before = jackpot.pool(code).amount
        hit = jackpot.play(rng, code, stake)
        contributed[code] += Fraction(stake * bp, BP)
        if hit is not None:
            assert hit.reason is WinReason.JACKPOT and hit.amount >= before and hit.amount >= seed_amount
            paid[code] += hit.amount
            assert jackpot.pool(code).amount == seed_amount
    for code in terms:
        pool = jackpot.pool(code)
        assert pool.balanced()
        assert 0 <= pool.carry < BP and pool.paid == paid[code]
        assert pool.amount + Fraction(pool.carry, BP) + paid[code] == seed_amount * (pool.hits + 1) + contributed[code]


def test_jackpot_hits_once_per_stake_per_hit() -> None:
    jackpot = ProgressiveJackpot("t", "T", contribution_bp=100, terms={"EUR": JackpotTerms(1_000, 5_000)})
    rng = random.Random("jackpot")
    n = 50_000
    hits = sum(jackpot.play(rng, "EUR", 100) is not None for _ in range(n))
    assert_rate(hits, n, Fraction(100, 5_000))
    assert jackpot.expected_rtp("EUR") == Fraction(1, 100) + Fraction(1_000, 5_000)
    assert jackpot.mean_hit("EUR") == 1_050


def test_default_jackpot_on_the_slot() -> None:
    jackpot = catalog.default_jackpot()
    assert jackpot.declared_rtp == Fraction(3, 250)  # 1 % contributions + 0.2 % seed money
    assert set(jackpot.terms) == set(STAKE_LADDERS)
    game = catalog.with_jackpot()
    assert isinstance(game, JackpotGame) and game.kind == "slot"
    assert game.declared_rtp == CROUPIER_STARS.declared_rtp + Fraction(3, 250)
    assert catalog.with_jackpot().jackpot is not game.jackpot  # fresh pools per run
    # Force a hit: a jackpot that drops on every round.
    sure = ProgressiveJackpot("s", "Sure", contribution_bp=100, terms={"EUR": JackpotTerms(5_000, 1)})
    rng = random.Random(2)
    r = JackpotGame(CROUPIER_STARS, sure).play(rng, 1_000, "EUR")
    assert r.payouts[-1] == Payout(5_010, WinReason.JACKPOT, "Sure")
    assert r.detail["jackpot"] == {"pool": 5_000, "grew": 10, "hit": True}
    with pytest.raises(ValueError):
        sure.play(rng, "XXX", 10)
