"""morphometry stage (see ARCHITECTURE.md)."""
