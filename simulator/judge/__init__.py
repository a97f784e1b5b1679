"""The judge: the ledger (the oracle), settlement and reconciliation, diagnosis and statistics.

Sans-I/O: it imports the protocol and play only.
"""
