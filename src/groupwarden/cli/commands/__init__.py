"""The commands, one module per area; each registers its own subcommands on the root parser."""
