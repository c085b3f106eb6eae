"""The write path: the sync pipeline (outbox -> blocks -> embeddings -> indexes), the
worker daemon, and the operator actions on the projections."""
