"""``croupier certify``: the go-live checklist an operator signs, item by item, with its evidence."""
