"""Subcommands of the ``mmoe`` CLI (thin: parse arguments, call the library)."""
