"""Pure game models: what a provider's games stake and pay, and why.

One module per game — :mod:`.slot`, :mod:`.roulette`, :mod:`.live`,
:mod:`.crash`, :mod:`.jackpot` — over the shared vocabulary of :mod:`.base`
(:class:`Stake`, :class:`Payout`, :class:`RoundResult`, the :class:`Game`
protocol); :mod:`.catalog` lists them by id.  No I/O, no global random state,
no floats on money: the traffic engine turns a :class:`RoundResult` into wallet
calls (a stake is a ``bet``, a payout a ``win`` with its reason).
"""

from .base import Game, GameKind, Payout, RoundResult, SinglePlayerGame, Stake

__all__ = ["Game", "GameKind", "Payout", "RoundResult", "SinglePlayerGame", "Stake"]
