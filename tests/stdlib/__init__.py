"""Running CPython's own test modules under corun, and the list of their known failures."""
