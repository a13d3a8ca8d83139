"""Installs ``corun.patches`` into the running interpreter (see issue plan: network stack next)."""

__all__: list[str] = []
