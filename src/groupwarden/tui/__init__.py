"""The terminal UI. Imported only when the UI opens, so `groupwarden --help` never loads Textual."""
