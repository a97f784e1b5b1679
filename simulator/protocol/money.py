"""Money as integer minor units of a currency whose exponent is fixed.

Every amount in croupier is a :class:`Money`: an ``int`` of minor units and a
:class:`Currency`.  Floats never enter a money path; dialects that speak decimal
strings convert at the edge through :meth:`Money.from_decimal` and
:meth:`Money.to_decimal`, which are exact and refuse anything that would round.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from .frozen import quick_init

INT64_MAX: Final = 2**63 - 1
"""The largest balance or amount a wallet must hold (a signed 64-bit column)."""


@dataclass(frozen=True, slots=True)
class Currency:
    """A currency code and its exponent (the number of minor-unit digits)."""

    code: str
    exponent: int

    def __str__(self) -> str:
        return self.code


# The exponents of PROTOCOL.md.  ETH is 8 as casinos trade it, not Ethereum's 18.
CURRENCIES: Final[dict[str, Currency]] = {
    c.code: c
    for c in (
        Currency("EUR", 2),
        Currency("USD", 2),
        Currency("GBP", 2),
        Currency("BRL", 2),
        Currency("TRY", 2),
        Currency("INR", 2),
        Currency("JPY", 0),
        Currency("KRW", 0),
        Currency("CLP", 0),
        Currency("KWD", 3),
        Currency("BHD", 3),
        Currency("BTC", 8),
        Currency("ETH", 8),
        Currency("USDT", 6),
    )
}


class UnknownCurrency(ValueError):
    """A currency code that croupier has no exponent for."""


class MoneyError(ValueError):
    """A value that cannot be represented exactly as minor units."""


def currency(code: str) -> Currency:
    """Look up a currency by its code, refusing codes we cannot scale."""
    try:
        return CURRENCIES[code]
    except (KeyError, TypeError):
        raise UnknownCurrency(f"unknown currency {code!r}") from None


_DECIMAL_RE: Final = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


@quick_init
@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: ``minor`` units of ``currency``."""

    minor: int
    currency: Currency

    def __post_init__(self) -> None:
        # bool is an int subclass; True EUR is a bug, not one cent.
        if type(self.minor) is not int:
            raise MoneyError(f"minor units must be an int, got {type(self.minor).__name__}")

    @classmethod
    def of(cls, minor: int, code: str) -> Money:
        return cls(minor, currency(code))

    @classmethod
    def from_decimal(cls, text: str | Decimal, code: str | Currency) -> Money:
        """Parse a decimal in major units exactly (``"12.34"`` EUR → 1234).

        Refuses more fractional digits than the currency has (unless they are
        zeros), exponents, NaN, infinities and floats: a dialect that receives
        ``12.345`` EUR has received a protocol violation, not 12.35.
        """
        cur = code if isinstance(code, Currency) else currency(code)
        if isinstance(text, float):  # pragma: no cover - typed away, kept as a guard
            raise MoneyError("floats are not money")
        if isinstance(text, Decimal):
            if not text.is_finite():
                raise MoneyError(f"not a finite amount: {text}")
            value = text
        else:
            if not isinstance(text, str) or not _DECIMAL_RE.fullmatch(text):
                raise MoneyError(f"not a plain decimal amount: {text!r}")
            try:
                value = Decimal(text)
            except InvalidOperation as exc:  # pragma: no cover - the regex guards it
                raise MoneyError(f"not a decimal: {text!r}") from exc
        scaled = value.scaleb(cur.exponent)
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{text} has more than {cur.exponent} decimals for {cur.code}")
        return cls(int(scaled), cur)

    def to_decimal(self) -> str:
        """Render in major units with exactly the currency's decimals (1234 EUR → "12.34")."""
        exp = self.currency.exponent
        sign = "-" if self.minor < 0 else ""
        digits = str(abs(self.minor))
        if exp == 0:
            return sign + digits
        digits = digits.rjust(exp + 1, "0")
        return f"{sign}{digits[:-exp]}.{digits[-exp:]}"

    def scaled(self, factor_exponent: int) -> int:
        """Express in units of 10**-factor_exponent of the major unit (×100 000 → 5).

        Refuses a scale that would drop non-zero digits.
        """
        shift = factor_exponent - self.currency.exponent
        if shift >= 0:
            return int(self.minor * 10**shift)
        q, r = divmod(self.minor, int(10**-shift))
        if r:
            raise MoneyError(f"{self} cannot be expressed with {factor_exponent} decimals")
        return int(q)

    @classmethod
    def from_scaled(cls, value: int, factor_exponent: int, code: str | Currency) -> Money:
        """The inverse of :meth:`scaled`: exact or refused."""
        cur = code if isinstance(code, Currency) else currency(code)
        if type(value) is not int:
            raise MoneyError("scaled amounts are integers")
        shift = factor_exponent - cur.exponent
        if shift <= 0:
            return cls(value * 10**-shift, cur)
        q, r = divmod(value, 10**shift)
        if r:
            raise MoneyError(f"{value} has more precision than {cur.code} allows")
        return cls(q, cur)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"cannot mix {self.currency.code} and {other.currency.code}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency.code}"


def format_minor(minor: int, code: str | Currency, *, grouped: bool = True) -> str:
    """``minor`` units of a currency in its major units, exactly (integer arithmetic, never a float):
    ``format_minor(-123456789, "EUR")`` → ``"-1,234,567.89"``; without ``grouped`` no thousands commas."""
    cur = code if isinstance(code, Currency) else currency(code)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**cur.exponent)
    head = f"{whole:,}" if grouped else str(whole)
    return f"{sign}{head}.{frac:0{cur.exponent}d}" if cur.exponent else sign + head
