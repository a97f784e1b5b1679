"""quick_init: the cheaper __init__ builds what the dataclass's own would, and the instance stays frozen."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import typing
from dataclasses import dataclass, field

import pytest

from simulator.protocol.calls import Ok
from simulator.protocol.frozen import quick_init
from simulator.protocol.money import Money


def _twin(checked: list[int]) -> tuple[type, type]:
    def make() -> type:
        @dataclass(frozen=True, slots=True)
        class Thing:
            name: str
            count: int = 3
            tags: list[str] = field(default_factory=list)
            note: str | None = field(default=None, compare=False)

            def __post_init__(self) -> None:
                checked.append(self.count)
                if self.count < 0:
                    raise ValueError("negative")

        return Thing

    return make(), quick_init(make())


def test_builds_what_the_generated_init_builds() -> None:
    seen: list[int] = []
    plain, quick = _twin(seen)
    cases: list[tuple[tuple[object, ...], dict[str, object]]] = [
        (("a",), {}), (("b", 5), {}), (("c",), {"tags": ["x"], "note": "n"}), ((), {"name": "d", "count": 0})]
    for args, kwargs in cases:
        p, q = plain(*args, **kwargs), quick(*args, **kwargs)
        assert dataclasses.astuple(p) == dataclasses.astuple(q)
        assert repr(p).split("(", 1)[1] == repr(q).split("(", 1)[1]
    assert seen == [3, 3, 5, 5, 3, 3, 0, 0]  # __post_init__ runs for both
    assert quick("a").tags is not quick("a").tags  # a factory's default is fresh per instance
    with pytest.raises(ValueError):
        quick("e", -1)
    with pytest.raises(TypeError):
        quick()  # a field without a default is still required
    assert str(inspect.signature(quick)) == str(inspect.signature(plain))
    assert typing.get_type_hints(vars(quick)["__init__"]) == typing.get_type_hints(vars(plain)["__init__"])


def test_stays_frozen_hashable_and_picklable() -> None:
    _, quick = _twin([])
    q = quick("a", 1, ["t"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.count = 2
    assert q == quick("a", 1, ["t"], note="other")  # compare=False still honoured
    ok = Ok(Money.of(150, "EUR"), wallet_tx_id="w1")  # the real classes: module-level, so picklable
    assert pickle.loads(pickle.dumps(ok)) == ok
    assert dataclasses.replace(q, count=4).count == 4
    assert hash(quick("a", tags=None)) == hash(quick("a", tags=None))
