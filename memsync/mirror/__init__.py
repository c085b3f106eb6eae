"""Mirrors: external memory stores (Zep) fed from their own queue (migration 0013); the
registry is memsync.index.registry.MIRRORS."""
