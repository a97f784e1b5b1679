"""The reference wallet: what a correct seamless wallet does, and the local sandbox."""
