"""A 5-reel, 3-row video slot with explicit reel strips and an exactly computed RTP.

Why a real reel-strip model and not "win with probability p": a wallet under
test should see the traffic a real slot makes — mostly small wins below the
stake, long dry runs, a free-spin feature that sends a burst of ``free_spin``
credits, and rare big hits — and the simulator should be able to *prove* what
return it pays, the way a provider's PAR sheet does.  So the maths is not
estimated: :func:`exact_stats` derives RTP and hit frequency from the strips by
combinatorics, and the tests check a simulation against it.

Rules of :class:`Slot` (and of :data:`CROUPIER_STARS`, the catalog's slot):

* **Reels.**  Each reel is a circular strip of symbols; a spin draws one stop per
  reel uniformly and shows that symbol and the next two (rows 0, 1, 2).
* **Lines.**  Each payline picks one row per reel.  A line pays for 3, 4 or 5 of
  the symbol on reel 1 in a row from the left; the wild stands in for any paying
  symbol and never appears on reel 1 (so it never leads a line and pays nothing
  by itself; the catalog's slot has wilds on reels 2–4, as Starburst does).
  Line pays are multiples of the *line bet*, and all winning lines are paid.
* **Stake.**  The line bet is ``stake // lines`` minor units and the round wagers
  exactly ``line_bet × lines``: the remainder ``stake % lines`` is *not* staked
  (the debit is the wagered amount, the player keeps the rest), so every pay is
  a whole number of minor units and the RTP is exact at every stake.  A stake
  below one minor unit per line is refused.
* **Scatters.**  Scatters pay anywhere on the screen, as multiples of the total
  wager; 3 or more (``free_spins_trigger``) award ``free_spins`` free spins.
* **Free spins.**  Played on the same reels at the same line bet, every win
  multiplied by ``free_spin_multiplier`` and credited with reason ``free_spin``
  (one credit per winning free spin, as many providers send them).  A free spin
  with enough scatters retriggers another ``free_spins``, but a feature never
  awards more than ``free_spins_cap`` spins in total.
* **Payouts.**  The base spin's total win is one ``regular`` payout.

The exact RTP (:func:`exact_stats`):

* A line's symbols on the five reels are independent and each is uniform over
  its strip, whatever the line's rows, so every line has the same expected pay:
  with ``c_j(X)`` the count of ``X`` on reel ``j`` and ``w_j`` its wilds,
  ``P(run ≥ k | X) = c_0(X)/L_0 · Π_{0<j<k} (c_j(X)+w_j)/L_j`` and the line RTP
  is ``Σ_X Σ_k pay(X, k)·(P(run ≥ k) − P(run ≥ k+1))`` per unit of line bet,
  hence per unit of total wager.
* The number of scatters on screen is a sum of independent per-reel counts
  (each counted over the reel's windows): an exact convolution.
* Free spins are i.i.d. base spins and whether spin ``n`` is played depends
  only on spins before it, so by Wald's identity the feature's expected value
  is ``E[N] · multiplier · base RTP``, where ``E[N]``, the expected number of
  spins a trigger plays with retriggers and the cap, is an exact finite
  recursion over (spins left, spins awarded).
* Hit frequency (the base spin pays anything or triggers the feature) needs the
  joint behaviour of all lines: no line can pay unless some line has three in a
  row on reels 1–3, so it enumerates every window of the first three reels
  (``L_0·L_1·L_2`` cases) and convolves the scatters of the last two.

:func:`brute_force_stats` checks all of this by visiting every stop combination
of a small slot (the tests do).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Final, Literal

from ...protocol.calls import WinReason
from .base import Payout, RoundResult, Stake

__all__ = [
    "CROUPIER_STARS",
    "CROUPIER_STARS_HIT_FREQUENCY",
    "CROUPIER_STARS_PAYTABLE",
    "CROUPIER_STARS_REELS",
    "CROUPIER_STARS_RTP",
    "CROUPIER_STARS_SCATTER_PAYS",
    "PAYLINES_10",
    "Slot",
    "SlotMath",
    "brute_force_stats",
    "exact_rtp",
    "exact_stats",
    "expected_free_spins",
]

ROWS: Final = 3
REELS: Final = 5


@dataclass(frozen=True, slots=True)
class SlotMath:
    """A slot's PAR-sheet figures, all exact, all per unit of total wager."""

    line_rtp: Fraction
    """Base-game line wins."""
    scatter_rtp: Fraction
    """Base-game scatter pays."""
    base_rtp: Fraction
    """``line_rtp + scatter_rtp``: the return of one spin, base or free (before the multiplier)."""
    trigger_probability: Fraction
    """P(a spin shows enough scatters to award free spins); also the retrigger probability."""
    expected_free_spins: Fraction
    """E[spins a trigger plays], retriggers and the cap included."""
    free_spin_rtp: Fraction
    """``trigger_probability · expected_free_spins · multiplier · base_rtp``."""
    rtp: Fraction
    """``base_rtp + free_spin_rtp``: the game's return to player."""
    hit_frequency: Fraction
    """P(the base spin pays anything or triggers free spins)."""


@dataclass(frozen=True, slots=True)
class _Spin:
    stops: tuple[int, ...]
    line_multiple: int
    """Sum of the winning lines' pays, in line bets."""
    line_wins: tuple[tuple[int, str, int, int], ...]
    """(line index, symbol, length, pay in line bets) per winning line."""
    scatters: int


class Slot:
    """A 5×3 line slot with wilds, scatters and free spins (rules in the module docstring).

    Immutable once built; all randomness comes from the ``rng`` given to
    :meth:`play`.  ``declared_rtp`` defaults to the exact RTP; when given (as a
    PAR sheet would state it) it must equal the exact RTP, or construction fails.
    """

    kind: Literal["slot"] = "slot"

    def __init__(
        self,
        game_id: str,
        name: str,
        *,
        reels: Sequence[Sequence[str]],
        paylines: Sequence[Sequence[int]],
        paytable: Mapping[str, Sequence[int]],
        scatter_pays: Mapping[int, int],
        wild: str,
        scatter: str,
        free_spins: int = 10,
        free_spins_trigger: int = 3,
        free_spins_cap: int = 50,
        free_spin_multiplier: int = 1,
        declared_rtp: Fraction | None = None,
    ) -> None:
        self.game_id = game_id
        self.name = name
        self.reels: tuple[tuple[str, ...], ...] = tuple(tuple(r) for r in reels)
        self.paylines: tuple[tuple[int, ...], ...] = tuple(tuple(p) for p in paylines)
        self.paytable: dict[str, tuple[int, int, int]] = {s: _three(s, p) for s, p in paytable.items()}
        self.scatter_pays: dict[int, int] = dict(scatter_pays)
        self.wild = wild
        self.scatter = scatter
        self.free_spins = free_spins
        self.free_spins_trigger = free_spins_trigger
        self.free_spins_cap = free_spins_cap
        self.free_spin_multiplier = free_spin_multiplier
        self._validate()

        # Hot-path tables: the window (rows 0..2) at every stop, its scatter count,
        # the line pays indexed by run length, the scatter pay by count.
        self._lengths = tuple(len(r) for r in self.reels)
        self._windows = tuple(
            tuple(tuple(r[(s + row) % len(r)] for row in range(ROWS)) for s in range(len(r))) for r in self.reels
        )
        self._scatter_counts = tuple(tuple(w.count(scatter) for w in ws) for ws in self._windows)
        self._pays = {s: (0, 0, 0, *p) for s, p in self.paytable.items()}
        top = REELS * ROWS
        self._scatter_table = tuple(
            max((pay for n, pay in self.scatter_pays.items() if n <= count), default=0) for count in range(top + 1)
        )

        # The RTP alone is cheap (closed forms); the hit frequency waits for exact_stats().
        trigger = _trigger(self)
        feature = trigger * expected_free_spins(trigger, free_spins, free_spins_cap) * free_spin_multiplier
        exact = (_line_rtp(self) + _scatter_rtp(self)) * (1 + feature)
        if declared_rtp is not None and declared_rtp != exact:
            raise ValueError(f"{game_id}: declared RTP {declared_rtp} is not the exact RTP {exact}")
        self.declared_rtp: Fraction = exact if declared_rtp is None else declared_rtp

    @property
    def lines(self) -> int:
        return len(self.paylines)

    def _validate(self) -> None:
        if len(self.reels) != REELS or any(len(r) < ROWS for r in self.reels):
            raise ValueError(f"a slot has {REELS} reels of at least {ROWS} stops")
        if len(self.paylines) < 1 or any(len(p) != REELS or not all(0 <= r < ROWS for r in p) for p in self.paylines):
            raise ValueError(f"paylines pick one of {ROWS} rows on each of {REELS} reels")
        if len(set(self.paylines)) != len(self.paylines):
            raise ValueError("paylines must be distinct")
        if self.wild in self.reels[0] or self.wild in self.paytable:
            raise ValueError("the wild substitutes on reels 2-5 only and has no pay of its own")
        if self.scatter in self.paytable:
            raise ValueError("the scatter pays through scatter_pays, not on lines")
        symbols = set(itertools.chain.from_iterable(self.reels))
        if unknown := set(self.paytable) - symbols:
            raise ValueError(f"paytable symbols not on any reel: {sorted(unknown)}")
        if any(type(n) is not int or n < 1 or type(p) is not int or p < 0 for n, p in self.scatter_pays.items()):
            raise ValueError("scatter_pays maps a count >= 1 to a whole multiple of the wager")
        if not 1 <= self.free_spins <= self.free_spins_cap or self.free_spins_trigger < 1:
            raise ValueError("free spins: 1 <= free_spins <= free_spins_cap, trigger >= 1")
        if type(self.free_spin_multiplier) is not int or self.free_spin_multiplier < 1:
            raise ValueError("the free-spin multiplier is a whole number >= 1")

    # ------------------------------------------------------------------ spinning

    def _evaluate(self, stops: tuple[int, ...]) -> _Spin:
        """Score the screen at ``stops``: line pays (in line bets) and the scatter count."""
        windows = [self._windows[i][s] for i, s in enumerate(stops)]
        w0, w1, w2, w3, w4 = windows
        wild, pays_of = self.wild, self._pays
        multiple = 0
        wins: list[tuple[int, str, int, int]] = []
        for index, (r0, r1, r2, r3, r4) in enumerate(self.paylines):
            lead = w0[r0]
            pays = pays_of.get(lead)
            if pays is None:  # the scatter, or a symbol that pays nothing
                continue
            # Unrolled run count: the hottest loop of the simulator.
            s = w1[r1]
            if s != lead and s != wild:
                continue
            s = w2[r2]
            if s != lead and s != wild:
                continue
            s = w3[r3]
            if s != lead and s != wild:
                length = 3
            else:
                s = w4[r4]
                length = 5 if s == lead or s == wild else 4
            pay = pays[length]
            if pay:
                multiple += pay
                wins.append((index, lead, length, pay))
        scatters = sum(self._scatter_counts[i][s] for i, s in enumerate(stops))
        return _Spin(stops, multiple, tuple(wins), scatters)

    def _spin(self, rng: random.Random) -> _Spin:
        return self._evaluate(tuple(rng.randrange(n) for n in self._lengths))

    def play(self, rng: random.Random, stake: int) -> RoundResult:
        """Spin once with ``stake`` minor units, playing out any free spins it awards.

        Wagers ``(stake // lines) * lines``; see the module docstring.
        """
        if type(stake) is not int:
            raise TypeError("stake must be an int of minor units")
        lines = len(self.paylines)
        line_bet = stake // lines
        if line_bet < 1:
            raise ValueError(f"{self.game_id}: a stake of {stake} is less than one minor unit on each of {lines} lines")
        wagered = line_bet * lines
        base = self._spin(rng)
        base_win = line_bet * base.line_multiple + wagered * self._scatter_table[base.scatters]
        payouts = [Payout(base_win, WinReason.REGULAR, "spin")] if base_win else []

        played = free_win = 0
        screens: list[tuple[int, ...]] = []
        if base.scatters >= self.free_spins_trigger:
            awarded = remaining = min(self.free_spins, self.free_spins_cap)
            factor = self.free_spin_multiplier
            while remaining:
                remaining -= 1
                played += 1
                spin = self._spin(rng)
                screens.append(spin.stops)
                win = factor * (line_bet * spin.line_multiple + wagered * self._scatter_table[spin.scatters])
                if win:
                    free_win += win
                    payouts.append(Payout(win, WinReason.FREE_SPIN, f"free spin {played}"))
                if spin.scatters >= self.free_spins_trigger:
                    extra = min(self.free_spins, self.free_spins_cap - awarded)
                    awarded += extra
                    remaining += extra

        detail: dict[str, object] = {
            "stops": base.stops,
            "line_bet": line_bet,
            "unwagered": stake - wagered,
            "line_wins": base.line_wins,
            "scatters": base.scatters,
            "free_spins": played,
            "free_spin_win": free_win,
            "free_spin_stops": tuple(screens),
        }
        return RoundResult(self.game_id, (Stake(wagered, "spin"),), tuple(payouts), detail)

    def play_round(self, rng: random.Random, stake: int) -> RoundResult:
        """The slot's typical round is just a spin."""
        return self.play(rng, stake)

    def window(self, stops: Sequence[int]) -> tuple[tuple[str, ...], ...]:
        """The screen at ``stops`` as rows of symbols (row 0 on top), for display and tests."""
        cols = [self._windows[i][s % self._lengths[i]] for i, s in enumerate(stops)]
        return tuple(tuple(col[row] for col in cols) for row in range(ROWS))

    def __repr__(self) -> str:
        return f"Slot({self.game_id!r}, rtp={float(self.declared_rtp):.4%})"


def _three(symbol: str, pays: Sequence[int]) -> tuple[int, int, int]:
    if len(pays) != 3 or any(type(p) is not int or p < 0 for p in pays) or list(pays) != sorted(pays):
        raise ValueError(f"{symbol}: pays for 3, 4, 5 in a row are three non-decreasing whole multiples")
    return (pays[0], pays[1], pays[2])


# ---------------------------------------------------------------------- exact maths


def _line_rtp(slot: Slot) -> Fraction:
    """E[pay of one line] in line bets: the closed form of the module docstring."""
    total = Fraction(0)
    for symbol, pays in slot.paytable.items():
        # P(run >= k) for k = 1..5, then P(run >= 6) = 0.
        at_least = [Fraction(0)] * 7
        p = Fraction(slot.reels[0].count(symbol), len(slot.reels[0]))
        at_least[1] = p
        for j in range(1, REELS):
            reel = slot.reels[j]
            p *= Fraction(reel.count(symbol) + reel.count(slot.wild), len(reel))
            at_least[j + 1] = p
        for length, pay in zip((3, 4, 5), pays, strict=True):
            total += pay * (at_least[length] - at_least[length + 1])
    return total


def _reel_scatter_counts(slot: Slot, reel: int) -> list[int]:
    """How many stops of ``reel`` show 0, 1, 2, ... scatters in their window."""
    counts = [0] * (ROWS + 1)
    for c in slot._scatter_counts[reel]:
        counts[c] += 1
    return counts


def _convolve(a: Sequence[int], b: Sequence[int]) -> list[int]:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        if x:
            for j, y in enumerate(b):
                out[i + j] += x * y
    return out


def _scatter_distribution(slot: Slot, reels: Sequence[int]) -> list[int]:
    """Number of stop combinations of ``reels`` showing each total scatter count."""
    dist = [1]
    for r in reels:
        dist = _convolve(dist, _reel_scatter_counts(slot, r))
    return dist


def _combinations(slot: Slot) -> int:
    n = 1
    for length in slot._lengths:
        n *= length
    return n


def _scatter_rtp(slot: Slot) -> Fraction:
    dist = _scatter_distribution(slot, range(REELS))
    return Fraction(sum(n * slot._scatter_table[c] for c, n in enumerate(dist)), _combinations(slot))


def _trigger(slot: Slot) -> Fraction:
    dist = _scatter_distribution(slot, range(REELS))
    return Fraction(sum(dist[slot.free_spins_trigger :]), _combinations(slot))


def expected_free_spins(trigger: Fraction, award: int, cap: int) -> Fraction:
    """E[free spins played] after a trigger: ``award`` spins, each retriggering ``award``
    more with probability ``trigger``, at most ``cap`` awarded in all.

    An exact recursion over (spins left, spins awarded): at most ``cap``² states.
    """
    if not 0 <= trigger <= 1 or award < 1 or cap < award:
        raise ValueError("need 0 <= trigger <= 1 and 1 <= award <= cap")

    @cache
    def spins(left: int, awarded: int) -> Fraction:
        if left == 0 or awarded == cap:
            return Fraction(awarded)  # nothing more can be awarded: all of it gets played
        extra = min(award, cap - awarded)
        return trigger * spins(left - 1 + extra, awarded + extra) + (1 - trigger) * spins(left - 1, awarded)

    # Walk up the awarded levels so the recursion depth stays below ``cap``.
    for level in range(cap, award - 1, -1):
        for left in range(level + 1):
            spins(left, level)
    return spins(award, award)


def _hit_frequency(slot: Slot) -> Fraction:
    """P(the base spin pays or triggers), by enumerating the first three reels' windows."""
    # No line can pay unless it has three in a row on reels 1-3 (the shortest pay).
    if any(pays[0] == 0 and (pays[1] or pays[2]) for pays in slot.paytable.values()):
        raise ValueError("hit frequency assumes every paying symbol pays 3 in a row")
    paying = [n for n in range(REELS * ROWS + 1) if slot._scatter_table[n] > 0 or n >= slot.free_spins_trigger]
    threshold = min(paying, default=REELS * ROWS + 1)

    wild, lines = slot.wild, slot.paylines
    paying_symbols = {s for s, p in slot.paytable.items() if p[0]}
    windows = slot._windows
    count2 = _reel_scatter_counts(slot, 2)
    # miss[s]: windows of reels 1-3 with no line win and s scatters among them.
    miss = [0] * (3 * ROWS + 1)
    for s0, w0 in enumerate(windows[0]):
        leads = [(line, w0[line[0]]) for line in lines if w0[line[0]] in paying_symbols]
        c0 = slot._scatter_counts[0][s0]
        for s1, w1 in enumerate(windows[1]):
            alive = [(line, lead) for line, lead in leads if w1[line[1]] in (lead, wild)]
            c01 = c0 + slot._scatter_counts[1][s1]
            if not alive:
                for c2, n in enumerate(count2):
                    miss[c01 + c2] += n
                continue
            for s2, w2 in enumerate(windows[2]):
                if not any(w2[line[2]] in (lead, wild) for line, lead in alive):
                    miss[c01 + slot._scatter_counts[2][s2]] += 1
    tail = _scatter_distribution(slot, (3, 4))
    no_hit = sum(m * t for s, m in enumerate(miss) for u, t in enumerate(tail) if s + u < threshold)
    return 1 - Fraction(no_hit, _combinations(slot))


def exact_stats(slot: Slot | None = None) -> SlotMath:
    """The exact PAR-sheet figures of ``slot`` (default: :data:`CROUPIER_STARS`)."""
    slot = CROUPIER_STARS if slot is None else slot
    return _exact_stats(slot)


@cache
def _exact_stats(slot: Slot) -> SlotMath:
    line, scatter = _line_rtp(slot), _scatter_rtp(slot)
    base = line + scatter
    trigger = _trigger(slot)
    n = expected_free_spins(trigger, slot.free_spins, slot.free_spins_cap)
    feature = trigger * n * slot.free_spin_multiplier * base
    return SlotMath(
        line_rtp=line,
        scatter_rtp=scatter,
        base_rtp=base,
        trigger_probability=trigger,
        expected_free_spins=n,
        free_spin_rtp=feature,
        rtp=base + feature,
        hit_frequency=_hit_frequency(slot),
    )


def exact_rtp(slot: Slot | None = None) -> Fraction:
    """The exact RTP of ``slot`` (default: :data:`CROUPIER_STARS`), free spins included."""
    return exact_stats(slot).rtp


def brute_force_stats(slot: Slot, limit: int = 2_000_000) -> tuple[Fraction, Fraction, Fraction]:
    """(base RTP, trigger probability, hit frequency) by visiting every stop combination.

    Independent of the closed forms (it scores screens with the same evaluator
    :meth:`Slot.play` uses), so the tests run it on a small slot to check them.
    Refuses slots with more than ``limit`` combinations.
    """
    total = _combinations(slot)
    if total > limit:
        raise ValueError(f"{total} stop combinations is more than the limit of {limit}")
    lines = slot.lines
    paid = triggered = hits = 0
    for stops in itertools.product(*(range(n) for n in slot._lengths)):
        spin = slot._evaluate(stops)
        scatter_pay = slot._scatter_table[spin.scatters]
        trig = spin.scatters >= slot.free_spins_trigger
        # In line bets; a scatter pays multiples of the wager, i.e. of ``lines`` line bets.
        paid += spin.line_multiple + lines * scatter_pay
        triggered += trig
        hits += bool(spin.line_multiple or scatter_pay or trig)
    return Fraction(paid, total * lines), Fraction(triggered, total), Fraction(hits, total)


# ---------------------------------------------------------------------- the catalog's slot

PAYLINES_10: Final[tuple[tuple[int, ...], ...]] = (
    (1, 1, 1, 1, 1),
    (0, 0, 0, 0, 0),
    (2, 2, 2, 2, 2),
    (0, 1, 2, 1, 0),
    (2, 1, 0, 1, 2),
    (1, 0, 0, 0, 1),
    (1, 2, 2, 2, 1),
    (0, 0, 1, 2, 2),
    (2, 2, 1, 0, 0),
    (1, 2, 1, 0, 1),
)
"""Ten lines over rows 0 (top), 1 (middle), 2 (bottom)."""


def _strip(text: str) -> tuple[str, ...]:
    return tuple(text.split())


CROUPIER_STARS_REELS: Final[tuple[tuple[str, ...], ...]] = (
    _strip("""
        JACK QUEEN BAR QUEEN SEVEN KING TEN SEVEN TEN ACE TEN ACE JACK KING KING BAR KING JACK JACK STAR
        JACK BELL QUEEN TEN TEN KING JACK BELL QUEEN ACE QUEEN QUEEN TEN BELL ACE TEN
    """),
    _strip("""
        TEN KING KING SEVEN TEN QUEEN ACE ACE TEN JACK JACK BELL WILD TEN BELL STAR JACK JACK ACE ACE
        KING QUEEN JACK BAR SEVEN TEN KING TEN QUEEN JACK WILD QUEEN QUEEN BELL KING BAR
    """),
    _strip("""
        QUEEN TEN JACK KING STAR JACK KING ACE BELL TEN QUEEN SEVEN ACE TEN BELL TEN BELL ACE TEN BAR
        WILD JACK KING SEVEN QUEEN KING JACK QUEEN JACK TEN QUEEN JACK ACE WILD KING BAR
    """),
    _strip("""
        BAR BELL KING JACK TEN SEVEN STAR WILD ACE ACE BAR QUEEN QUEEN KING TEN WILD JACK BELL ACE QUEEN
        TEN SEVEN JACK KING TEN TEN TEN ACE KING JACK BELL JACK QUEEN JACK KING QUEEN
    """),
    _strip("""
        KING STAR BAR QUEEN ACE TEN TEN TEN ACE BELL SEVEN QUEEN BAR BELL TEN KING JACK JACK JACK JACK
        TEN KING JACK ACE ACE BELL QUEEN KING TEN KING JACK QUEEN QUEEN QUEEN SEVEN TEN
    """),
)
"""36 stops per reel: 60,466,176 screens.  Two wilds on each of reels 2-4, one STAR scatter per reel,
no two scatters or wilds within a window of each other."""

CROUPIER_STARS_PAYTABLE: Final[dict[str, tuple[int, int, int]]] = {
    # symbol: pay for 3, 4, 5 in a row, in line bets
    "TEN": (10, 25, 75),
    "JACK": (10, 25, 75),
    "QUEEN": (15, 40, 100),
    "KING": (20, 50, 125),
    "ACE": (25, 60, 150),
    "BELL": (30, 100, 300),
    "BAR": (50, 150, 500),
    "SEVEN": (75, 250, 1_000),
}

CROUPIER_STARS_SCATTER_PAYS: Final[dict[int, int]] = {3: 5, 4: 25, 5: 100}
"""STARs anywhere, in multiples of the total wager; 3+ also award 10 free spins."""

CROUPIER_STARS_RTP: Final = Fraction(
    "428831583720176051205802171564787850448786394852380646979365666676776676302295641098198156"
    "764098770870440863779196046064326935037931795811793224131325531933335906227317096240217204"
    "397278901424245"
    "/"
    "446759905199778768389843338450801649152831177822826964549299176754860972761859149006196014"
    "013040582091831892713909369539215610645324216639558690650311809371362104079308538075322424"
    "957851133804544"
)
"""≈ 95.987 %, as :func:`exact_rtp` derives it (the cap on free spins makes the expected number of
spins a polynomial of high degree in the trigger probability, hence the long denominator):
lines 83.669 %, scatters 3.024 %, free spins 9.294 %."""

CROUPIER_STARS_HIT_FREQUENCY: Final = Fraction(315_143, 1_119_744)
"""≈ 28.14 % (1 in 3.55): the base spin pays something or triggers free spins.
Free spins trigger with probability 211/41472 (1 in 196.5) and play 10.536 spins on average."""

CROUPIER_STARS: Final = Slot(
    "croupier-stars",
    "Croupier Stars",
    reels=CROUPIER_STARS_REELS,
    paylines=PAYLINES_10,
    paytable=CROUPIER_STARS_PAYTABLE,
    scatter_pays=CROUPIER_STARS_SCATTER_PAYS,
    wild="WILD",
    scatter="STAR",
    free_spins=10,
    free_spins_trigger=3,
    free_spins_cap=50,
    free_spin_multiplier=2,
    declared_rtp=CROUPIER_STARS_RTP,
)
"""The catalog's slot: 10 lines, wilds on reels 2-4, 3+ STARs pay and award 10 free spins at ×2
(retriggering, at most 50 per feature).  Built with its PAR-sheet RTP, which construction checks."""
