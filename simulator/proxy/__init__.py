"""``croupier proxy``: stands between a real provider and a real wallet, judges their traffic with the
ledger, injects faults on purpose, records the exchanges and exposes Prometheus metrics.

The pure parts (:mod:`.faults`, :mod:`.recording`, :mod:`.watch`, :mod:`.reconcile`, :mod:`.matching`)
do no I/O; :mod:`.service` and :mod:`.server` are the thin aiohttp layer around them, :mod:`.replayer`
re-sends a recording against another wallet.
"""
