"""A players file: the test accounts a wallet already has, for a wallet croupier cannot provision (no admin API).

Read here, below the apps, because ``croupier run``, ``check``, ``certify`` and ``replay-traffic`` all take
the same ``--players FILE``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from ..protocol.money import currency


class PlayersFileError(ValueError):
    """A players file that cannot be read, naming the file and the row."""


@dataclass(frozen=True, slots=True)
class TestAccount:
    """One row of a players file: a player the wallet already has, and how croupier reaches it."""

    player_id: str
    token: str
    """A launch token (for ``authenticate``); where the operator makes the sessions and the file gives
    no ``session_token``, the session itself."""
    currency: str
    session_token: str | None = None
    """The player's session, where the operator makes them (``sessions = "operator"``); also the session
    when an ``authenticate`` answer carries none."""
    session_ref: str | None = None
    """A second session id some wires carry beside the session token."""

    @property
    def session(self) -> str:
        """The session croupier plays on where no ``authenticate`` call makes one."""
        return self.session_token or self.token


def read_accounts(path: str) -> list[TestAccount]:
    """A CSV of test accounts with a header: player_id,token,currency (a launch token each), and the
    optional columns session_token and session_ref (where the operator makes the sessions, or a wire
    carries a second session id).  A UTF-8 byte-order mark (Excel's "CSV UTF-8") is ignored, and so
    are spaces around names and values; an empty optional value is no value."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
            rows = list(reader)
    except OSError as exc:
        raise PlayersFileError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PlayersFileError(f"{path}: not a UTF-8 CSV file ({exc})") from None
    accounts = []
    for n, row in enumerate(rows, start=2):
        try:
            acc = TestAccount(row["player_id"].strip(), row["token"].strip(), row["currency"].strip(),
                              _optional(row.get("session_token")), _optional(row.get("session_ref")))
            currency(acc.currency)
        except (KeyError, AttributeError):
            raise PlayersFileError(f"{path}:{n}: needs columns player_id,token,currency "
                           "(and optionally session_token,session_ref)") from None
        except ValueError as exc:
            raise PlayersFileError(f"{path}:{n}: {exc}") from None
        if not acc.player_id or not (acc.token or acc.session_token):
            raise PlayersFileError(f"{path}:{n}: a player_id and a token (or a session_token) are needed")
        accounts.append(acc)
    if not accounts:
        raise PlayersFileError(f"{path}: no accounts")
    return accounts


def _optional(value: str | None) -> str | None:
    value = value.strip() if isinstance(value, str) else None
    return value or None
