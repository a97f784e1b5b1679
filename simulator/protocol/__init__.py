"""The protocol: what PROTOCOL.md says, as values. Money, error codes, the wallet calls and their outcomes,
signing, the finding kinds and rules (``findings``), and the dialects (wire formats, both sides).

The bottom layer: it imports nothing else of croupier, and no I/O.
"""
