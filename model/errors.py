"""Typed errors for user mistakes. Each message is one line that names the file, the
key or row, the bad value and what is allowed; the command line prints it and exits
with status 2."""


class MpsimError(Exception):
    """Base class of every error the command line reports as a one-line message."""


class ParameterError(MpsimError, ValueError):
    """A parameter name, type or value that the model does not accept."""


class ScenarioError(MpsimError, ValueError):
    """A scenario file that cannot be read, or an ``extends`` chain that is broken."""


class DataError(MpsimError, ValueError):
    """A data file row that cannot be used."""


class ResultsExistError(MpsimError, FileExistsError):
    """A results folder that already exists: runs never overwrite one another."""


class InputFileError(MpsimError, ValueError):
    """An input file that cannot be read as text: missing, a folder, not UTF-8, binary."""


class RunFolderError(MpsimError, ValueError):
    """A results folder that is not finished (a ``.partial`` folder, a missing or corrupt
    file): ``plot`` and ``compare`` read finished folders only."""


class OutputError(MpsimError):
    """A results folder that cannot be made or written (``--out`` a file, read-only,
    disk full)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, or a SIGTERM or SIGHUP turned into an exception so that clean-up runs.

    ``signum`` is the signal. A command that has itself said what it kept (a
    calibration's checkpoint) raises ``Interrupted(signum, message)`` and the command
    line prints ``message`` as its one line instead of its own."""

    def __init__(self, signum: int = 2, message: str | None = None):
        super().__init__(signum, message)
        self.signum = signum
        self.message = message
