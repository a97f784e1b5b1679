"""``croupier run``: traffic at a wallet, judged by the ledger (``runner``)."""
