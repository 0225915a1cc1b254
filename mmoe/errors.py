"""The base of every user-facing mmoe error: the CLI prints these as one clear message, no traceback."""


class MMoEError(Exception):
    """Bad input, config or files, described for a person."""


class UsageError(MMoEError):
    """Command-line arguments that do not go together."""
