"""Text: markdown structure, generic chunking and content hashing. Pure."""
