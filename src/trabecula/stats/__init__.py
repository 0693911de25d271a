"""stats stage (see ARCHITECTURE.md)."""
