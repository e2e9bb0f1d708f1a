"""One error type for everything a user can get wrong; the CLI prints it without a traceback."""


class CurateError(Exception):
    """A problem with the user's recipe, data or arguments.

    `where` names the file, line or recipe field, so the message says exactly what to fix.
    """

    def __init__(self, message: str, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


def did_you_mean(name: str, choices) -> str:
    """A ' (did you mean X?)' suffix when a close match exists, else ''."""
    import difflib

    choices = list(choices)
    # difflib is case-sensitive; a choice differing only in case is the likeliest meaning
    close = [c for c in choices if c.lower() == name.lower()] or \
        difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
