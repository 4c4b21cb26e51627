"""groupwarden: see and steer identity-provider instance groups and their folder roles."""

__version__ = "0.1.0"
