"""Errors the command line turns into a one-line message and a non-zero exit."""


class CrackRenderError(Exception):
    """Base class for every error crackrender reports to a user."""


class InputError(CrackRenderError, ValueError):
    """Bad user input: an unreadable file, a non-binary mask, mismatched sizes, an empty folder."""
