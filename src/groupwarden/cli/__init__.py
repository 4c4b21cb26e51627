"""The command line: thin calls into the service layer."""
