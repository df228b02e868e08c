"""The tool's own storage: engines, its tables, their migrations, and what it remembers."""
