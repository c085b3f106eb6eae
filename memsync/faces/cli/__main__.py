"""`python -m memsync.faces.cli`."""

from memsync.faces.cli import main

main()
