"""The MCP face: `memsync mcp` serves the agent API (memsync/write/memory.py and the read
path) as Model Context Protocol tools, prompts and resources."""
