"""The one exception type users see.

Every check on user input (configs, data, formats, ports, frames) raises `DpfmError` with a message that
names the problem and says how to fix it. The CLI prints it as a single line and exits non-zero; anything
else escaping is a bug and keeps its traceback.
"""


class DpfmError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} ({fix})")
