"""quality stage (see ARCHITECTURE.md)."""
