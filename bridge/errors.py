"""Errors meant for the user: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A problem the user can fix (bad file, bad option, missing checkpoint); never a traceback."""
