"""Exceptions that reach the user.

`QuantzooError` is a user mistake or an outside failure (bad manifest, wrong bytes, unreachable
URL): the CLI prints its message and exits 1. `UsageError` is a wrong command line: exit 2.
Messages say what failed, what was expected and found, where, and what to do next.
"""

from __future__ import annotations


class QuantzooError(Exception):
    """A failure the user can act on; the message is the whole story."""

    exit_code = 1


class UsageError(QuantzooError):
    """The command line itself is wrong."""

    exit_code = 2


class ManifestError(QuantzooError):
    """One or more manifest problems, every one with its file and key path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the registry:"
        super().__init__("\n".join([head, *("  " + p for p in self.problems)]))


class FetchError(QuantzooError):
    """A source could not be fetched or did not verify."""


class ChecksumError(FetchError):
    """Downloaded bytes do not match the expected sha256."""
