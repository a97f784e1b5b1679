"""The game page a launch URL opens: plain, accessible HTML that plays through ``POST /play``.

No JavaScript: a form posts the stake, the provider plays the round and
redirects back here (post/redirect/get), so reloading never plays twice.  The
result is announced in a ``role="status"`` region, an error in ``role="alert"``;
every control has a label; everything shown is escaped.
"""

from __future__ import annotations

from html import escape

from ..play.players import STAKE_LADDERS
from ..protocol.money import Money
from .lobby import LobbyGame, rtp_decimal
from .state import RoundRecord, Session

_ACTION = {"slot": "Spin", "roulette": "Spin the wheel", "live": "Place bet", "crash": "Bet"}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
.balance{font-size:1.5rem}
.alert{border:2px solid #a00;padding:.5rem 1rem;color:#700}
.status{border:1px solid #666;padding:.5rem 1rem}
label{display:block;margin:.5rem 0 .25rem}
select,button{font-size:1.1rem;padding:.4rem .8rem}
button:focus,select:focus{outline:3px solid #05a}
"""


def money(amount: int, session: Session) -> str:
    return f"{Money(amount, session.currency).to_decimal()} {session.currency.code}"


def _stakes(session: Session, game: LobbyGame) -> list[int]:
    ladder = [s for s in STAKE_LADDERS.get(session.currency.code, ()) if s >= game.min_stake] or [game.min_stake]
    if session.last_stake is not None and session.last_stake not in ladder:
        ladder = sorted({*ladder, session.last_stake})
    return ladder


def _last_round(session: Session, r: RoundRecord) -> str:
    if r.status == "settled":
        outcome = f"won {money(r.paid, session)}" if r.paid else "no win"
        text = f"Staked {money(r.staked, session)}, {outcome}."
    elif r.status == "refused":
        text = f"The bet was refused ({r.refusal or 'by the wallet'}); nothing was staked."
    elif r.status == "cancelled":
        text = "The bet got no answer from the wallet and was cancelled; nothing was staked."
    else:
        text = "The wallet has not confirmed this round yet; it will be settled."
    return f'<p>Round <code>{escape(r.round_id)}</code>: {escape(text)}</p>'


def game_page(session: Session, game: LobbyGame, error: tuple[str, str] | None = None) -> str:
    """The page for ``session``; ``error`` is ``(code, message)`` of a refused play."""
    balance = money(session.seat.balance, session) if session.seat.balance is not None else "unknown"
    options = "".join(
        f'<option value="{s}"{" selected" if s == (session.last_stake or _stakes(session, game)[0]) else ""}>'
        f"{escape(money(s, session))}</option>"
        for s in _stakes(session, game)
    )
    alert = ""
    if error is not None:
        code, message = error
        alert = f'<div class="alert" role="alert"><p><strong>{escape(code)}</strong>: {escape(message)}</p></div>'
    last = _last_round(session, session.rounds[-1]) if session.rounds else "<p>No round played yet.</p>"
    action = _ACTION.get(game.kind, "Play")
    return f"""<!doctype html>
<html lang="{escape(session.language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(game.name)} · croupier</title>
<style>{_STYLE}</style>
</head>
<body>
<main>
<h1>{escape(game.name)}</h1>
<p>Player <strong>{escape(session.player_id)}</strong></p>
<p class="balance" id="balance">Balance: <strong>{escape(balance)}</strong></p>
{alert}
<section aria-labelledby="last-round">
<h2 id="last-round">Last round</h2>
<div class="status" role="status">{last}</div>
</section>
<form method="post" action="/play">
<input type="hidden" name="session_id" value="{escape(session.session_id)}">
<label for="stake">Stake</label>
<select id="stake" name="stake">{options}</select>
<button type="submit">{escape(action)}</button>
</form>
<p><small>Return to player: {rtp_decimal(game.declared_rtp)} · croupier mock provider</small></p>
</main>
</body>
</html>
"""
