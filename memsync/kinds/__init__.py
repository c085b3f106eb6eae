"""Memory kinds, one module each: what a kind syncs (its source declaration and chunker),
how it reads in a bundle, and its recipe section (model and how it gathers).

The base types live in `base`; `registry` lists the kinds; `memsync.write.sources` and
`memsync.read.recipes` assemble the source list and the section union from it. This module
imports nothing, so storage code may import `memsync.kinds.base` without a cycle."""
