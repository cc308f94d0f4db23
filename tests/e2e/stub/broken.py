"""A function whose init fails: its module raises when imported."""

raise RuntimeError("this function cannot start")
