"""croupier's Prometheus metrics: one vocabulary (:mod:`.families`) for the wallet, the provider, the proxy
and ``croupier run``, and how a process serves it (:mod:`.exposition`, several worker processes included).

A layer of its own, just above the protocol, so every app may import it and none writes the names again;
the core (protocol, play, judge, the driver's delivery) never imports it (pyproject.toml, ``core-pure``).
"""
