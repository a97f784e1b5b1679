"""croupier: a game-provider simulator, load-test harness and reference wallet for seamless wallets."""

__version__ = "0.1.0"
