"""The service layer: every rule lives here, and the CLI and the TUI call only this."""
