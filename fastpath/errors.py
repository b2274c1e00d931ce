"""The one error a sort plan raises when it cannot be used."""


class PlanError(ValueError):
    """A sort plan (or its pre-advice data) is wrong; the message says where and what to change.

    The parts are kept as attributes so that a user interface can show them apart:
    ``file``, ``line`` (None when unknown), ``key`` (e.g. ``[[routes]] #3 destination``),
    ``value`` (as written, or None), ``problem`` and ``remedy``.
    """

    def __init__(self, problem, *, file=None, line=None, key=None, value=None, remedy=None):
        self.file = None if file is None else str(file)
        self.line = line
        self.key = key
        self.value = value
        self.problem = problem
        self.remedy = remedy
        super().__init__(self._compose())

    def __reduce__(self):
        # A plan built in a child process raises there and again here, with the same parts.
        return _plan_error, (self.problem, self.file, self.line, self.key, self.value, self.remedy)

    def _compose(self):
        where = self.file or "<plan>"
        if self.line is not None:
            where += f":{self.line}"
        text = where + ": "
        if self.key is not None:
            text += self.key
            if self.value is not None:
                text += f" = {self.value!r}"
            text += ": "
        text += self.problem
        if self.remedy:
            text += ". " + self.remedy[0].upper() + self.remedy[1:]
        return text


def _plan_error(problem, file, line, key, value, remedy):
    return PlanError(problem, file=file, line=line, key=key, value=value, remedy=remedy)
