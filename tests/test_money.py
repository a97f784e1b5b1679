"""Money is exact: every conversion round-trips or refuses; nothing rounds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.protocol.money import CURRENCIES, INT64_MAX, Money, MoneyError, UnknownCurrency, currency

currencies = st.sampled_from(sorted(CURRENCIES))
minor = st.integers(min_value=-INT64_MAX, max_value=INT64_MAX)


def test_exponents_are_those_of_the_protocol() -> None:
    expected = {"EUR": 2, "USD": 2, "GBP": 2, "BRL": 2, "TRY": 2, "INR": 2, "JPY": 0, "KRW": 0, "CLP": 0,
                "KWD": 3, "BHD": 3, "BTC": 8, "ETH": 8, "USDT": 6}
    assert {c: CURRENCIES[c].exponent for c in CURRENCIES} == expected


@given(minor, currencies)
def test_decimal_round_trip(units: int, code: str) -> None:
    m = Money.of(units, code)
    text = m.to_decimal()
    assert Money.from_decimal(text, code) == m
    assert Decimal(text) == Decimal(units).scaleb(-currency(code).exponent)


@given(minor, currencies, st.integers(min_value=0, max_value=10))
def test_scaled_round_trip(units: int, code: str, exp: int) -> None:
    m = Money.of(units, code)
    try:
        scaled = m.scaled(exp)
    except MoneyError:
        assert exp < m.currency.exponent and units % 10 ** (m.currency.exponent - exp)
        return
    assert Money.from_scaled(scaled, exp, code) == m


@pytest.mark.parametrize(
    ("text", "code", "units"),
    [("12.34", "EUR", 1234), ("0.01", "EUR", 1), ("12", "EUR", 1200), ("12.340", "EUR", 1234),
     ("1500", "JPY", 1500), ("1.234", "KWD", 1234), ("0.00000001", "BTC", 1), ("-3.5", "USD", -350),
     ("1.000001", "USDT", 1_000_001)],
)
def test_from_decimal(text: str, code: str, units: int) -> None:
    assert Money.from_decimal(text, code).minor == units


@pytest.mark.parametrize("text", ["12.345", "1e3", "NaN", "Infinity", "", " 1", "1.", ".5", "01", "+1", "1,00"])
def test_from_decimal_refuses_what_would_round_or_is_not_plain(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.from_decimal(text, "EUR")


def test_no_floats_or_bools() -> None:
    with pytest.raises(MoneyError):
        Money(1.0, currency("EUR"))  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(True, currency("EUR"))


def test_mixing_currencies_is_refused() -> None:
    with pytest.raises(MoneyError):
        Money.of(1, "EUR") + Money.of(1, "USD")
    assert Money.of(1, "EUR") + Money.of(2, "EUR") == Money.of(3, "EUR")
    assert Money.of(1, "EUR") < Money.of(2, "EUR")


def test_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        currency("XXX")
    assert str(Money.of(123456, "JPY")) == "123456 JPY"
    assert str(Money.of(-5, "EUR")) == "-0.05 EUR"
