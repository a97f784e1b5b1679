"""Play: games, players, scenarios, round generators (``rounds``, ``gameplay``) and fault plans.

Sans-I/O: it imports the protocol only.
"""
