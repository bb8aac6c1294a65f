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
