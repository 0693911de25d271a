"""enhance stage (see ARCHITECTURE.md)."""
