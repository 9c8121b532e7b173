"""The few named errors the library raises; the CLI, server and UI turn them into messages."""


class RagError(Exception):
    """Base class: every error the library means to report to a user."""


class QuestionError(RagError, ValueError):
    """The question is empty, too long or otherwise unusable."""


class _FileError(RagError):
    """An error in a file, its message led by where: "file:line", "file" or "line N"."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None):
        where = source or ""
        if line is not None:
            where += f"{':' if where else 'line '}{line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.line = line
        self.source = source


class TranscriptFormatError(_FileError):
    """The transcript does not follow the expected format; the message names the line."""


class InputFileError(_FileError):
    """A file named on the command line (a gold set, a batch of questions) cannot be read or
    is malformed; the message names the file and, when it can, the line."""


class ModelError(RagError):
    """An embedding model cannot be loaded: an unknown name with no hub to fetch it from, a
    folder that holds no model, or a cache folder that cannot be written."""


class IndexMissingError(RagError):
    """No index at the given folder; run `rag build`."""


class IndexCorruptError(RagError):
    """The index files are unreadable, truncated or inconsistent."""


class IndexStaleError(RagError):
    """The index was built from another transcript, model or format; it must be rebuilt."""


class IndexWriteError(RagError):
    """The index folder cannot be written (read-only, full, or locked by another build)."""
