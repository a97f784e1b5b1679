"""The ``croupier`` command line: argument parsing, progress and interrupts, one module per command.

The top layer: it may import everything, nothing imports it (but ``simulator.__main__``).
"""
