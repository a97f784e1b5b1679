"""croupier under Locust: players as Locust users, load shapes, thresholds and the end-of-run verdict.

Modules that import Locust or gevent (``locustfile``, ``users``, ``driver``, ``shapes``,
``process``) are only ever imported inside a Locust process.  ``curves``, ``verdict``,
``settings`` and ``report`` are pure: ``croupier load`` and the tests import them without
gevent ever patching their process.
"""
