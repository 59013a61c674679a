"""The catalog cache (cashews): a decorator of the product repository port, kept fresh by tag tokens."""
