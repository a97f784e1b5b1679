"""Driving: ``delivery`` interprets round steps and fault decisions once (pure), over a few primitives that
``client`` and ``driver`` (aiohttp) and ``inprocess`` (in memory, in order) implement.

It imports the layers below (protocol, play, judge) and the reference wallet's engine (``inprocess``).
"""
