"""scanner stage (see ARCHITECTURE.md)."""
