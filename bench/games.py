"""Million-round simulations of every game next to its declared RTP.

    .venv/bin/python bench/games.py                 # 1,000,000 rounds per game
    .venv/bin/python bench/games.py --rounds 200000 --seed 7 --games croupier-stars crash-x

For each game: the measured RTP (paid / staked), its ratio to the declared RTP,
the hit frequency (rounds that pay anything), σ (the standard deviation of one
round's return, from the sample), how many standard errors σ/√N the measured
RTP lies from the declared one (z), and rounds per second of the pure model.

The live table is measured per *table round* (all players share one number, so
their returns are not independent): ``--players`` players stake ``--stake``
each, and "rounds" counts player-rounds.  The jackpot row attaches a jackpot
that drops often enough (once per 2,000 stakes) for a million rounds to measure
its return; its "declared" is the long-run expected contribution.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from simulator.play.games import catalog
from simulator.play.games.jackpot import JackpotTerms, ProgressiveJackpot
from simulator.play.games.live import LiveRouletteTable
from simulator.play.games.roulette import random_bets
from simulator.play.games.slot import CROUPIER_STARS, CROUPIER_STARS_HIT_FREQUENCY, exact_stats


@dataclass
class Tally:
    """Integer sums of one run: the statistics are exact until the final division."""

    rounds: int = 0
    units: int = 0
    """Independent units (rounds; table rounds for live)."""
    staked: int = 0
    paid: int = 0
    hits: int = 0
    sum_sq: Fraction = Fraction(0)
    sum_r: Fraction = Fraction(0)
    seconds: float = 0.0

    def add_unit(self, staked: int, paid: int) -> None:
        self.units += 1
        self.staked += staked
        self.paid += paid

    def finish(self, returns: list[tuple[int, int]]) -> None:
        # Per-unit returns paid/staked; integer sums per common stake keep it exact.
        by_stake: dict[int, list[int]] = {}
        for staked, paid in returns:
            by_stake.setdefault(staked, []).append(paid)
        for staked, paids in by_stake.items():
            self.sum_r += Fraction(sum(paids), staked)
            self.sum_sq += Fraction(sum(p * p for p in paids), staked * staked)

    @property
    def rtp(self) -> Fraction:
        return Fraction(self.paid, self.staked)

    @property
    def sigma(self) -> float:
        n = self.units
        mean = self.sum_r / n
        return math.sqrt((self.sum_sq - n * mean * mean) / (n - 1))


def run(play: Callable[[], tuple[int, int, int, int]], units: int) -> Tally:
    """``play()`` → (staked, paid, player-rounds, winning player-rounds) of one independent unit."""
    tally = Tally()
    returns: list[tuple[int, int]] = []
    start = time.perf_counter()
    for _ in range(units):
        staked, paid, rounds, hits = play()
        tally.rounds += rounds
        tally.hits += hits
        tally.add_unit(staked, paid)
        returns.append((staked, paid))
    tally.seconds = time.perf_counter() - start
    tally.finish(returns)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1_000_000, help="player-rounds per game")
    parser.add_argument("--seed", default="croupier-bench")
    parser.add_argument("--stake", type=int, default=100, help="minor units per player-round")
    parser.add_argument("--players", type=int, default=20, help="players per live table round")
    parser.add_argument("--games", nargs="*", help="only these (ids, or 'jackpot')")
    args = parser.parse_args()
    n, stake = args.rounds, args.stake

    def rng(name: str) -> random.Random:
        return random.Random(f"{args.seed}:{name}")

    benches: dict[str, tuple[Fraction, Callable[[], Tally]]] = {}

    slot_rng = rng("slot")

    def slot_round() -> tuple[int, int, int, int]:
        r = CROUPIER_STARS.play(slot_rng, stake)
        return r.total_staked, r.total_paid, 1, int(r.is_win)

    benches["croupier-stars"] = (CROUPIER_STARS.declared_rtp, lambda: run(slot_round, n))

    roulette = catalog.get("roulette-eu")
    roulette_rng = rng("roulette")

    def roulette_round() -> tuple[int, int, int, int]:
        r = roulette.play_round(roulette_rng, stake)
        return r.total_staked, r.total_paid, 1, int(r.is_win)

    benches["roulette-eu"] = (roulette.declared_rtp, lambda: run(roulette_round, n))

    table = catalog.get("live-roulette")
    assert isinstance(table, LiveRouletteTable)
    live_rng = rng("live")
    players = [f"p{i}" for i in range(args.players)]

    def live_round() -> tuple[int, int, int, int]:
        live = table.open_round(live_rng)
        for p in players:
            for bet in random_bets(live_rng, stake):
                live.place(p, bet)
        results = live.settle(live_rng).values()
        paid = sum(r.total_paid for r in results)
        return stake * len(players), paid, len(players), sum(r.is_win for r in results)

    benches["live-roulette"] = (table.declared_rtp, lambda: run(live_round, n // args.players))

    crash = catalog.get("crash-x")
    crash_rng = rng("crash")

    def crash_round() -> tuple[int, int, int, int]:
        r = crash.play_round(crash_rng, stake)
        return r.total_staked, r.total_paid, 1, int(r.is_win)

    benches["crash-x"] = (crash.declared_rtp, lambda: run(crash_round, n))

    jackpot = ProgressiveJackpot(
        "bench", "Bench Drop", contribution_bp=100, terms={"EUR": JackpotTerms(50 * stake, 2_000 * stake)}
    )
    jackpot_rng = rng("jackpot")

    def jackpot_round() -> tuple[int, int, int, int]:
        hit = jackpot.play(jackpot_rng, "EUR", stake)
        return stake, hit.amount if hit else 0, 1, int(hit is not None)

    benches["jackpot"] = (jackpot.expected_rtp("EUR"), lambda: run(jackpot_round, n))

    wanted = args.games or list(benches)
    print(f"{n:,} player-rounds per game, stake {stake}, seed {args.seed!r}")
    header = (
        f"{'game':<16}{'declared':>10}{'measured':>10}{'ratio':>9}{'z':>7}{'hit freq':>10}"
        f"{'σ':>8}{'rounds/s':>11}{'seconds':>9}"
    )
    print(header)
    print("-" * len(header))
    for name in wanted:
        declared, bench = benches[name]
        t = bench()
        z = float(t.rtp - declared) / (t.sigma / math.sqrt(t.units))
        print(
            f"{name:<16}{float(declared):>10.4%}{float(t.rtp):>10.4%}{float(t.rtp / declared):>9.4f}{z:>+7.2f}"
            f"{t.hits / t.rounds:>10.2%}{t.sigma:>8.3f}{t.rounds / t.seconds:>11,.0f}{t.seconds:>9.1f}"
        )
        if name == "croupier-stars":
            stats = exact_stats()
            print(
                f"{'':16}exact: hit frequency {float(CROUPIER_STARS_HIT_FREQUENCY):.4%}, "
                f"free spins 1 in {float(1 / stats.trigger_probability):.1f}, "
                f"{float(stats.expected_free_spins):.3f} spins per feature"
            )
        if name == "jackpot":
            pool = jackpot.pool("EUR")
            print(
                f"{'':16}{pool.hits} drops, mean {pool.paid / max(pool.hits, 1):,.0f} "
                f"(expected {float(jackpot.mean_hit('EUR')):,.0f}), ledger balanced: {pool.balanced()}"
            )


if __name__ == "__main__":
    main()
