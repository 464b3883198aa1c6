"""One module per CLI command; each exposes ``add_arguments(parser)`` and ``run(args) -> int``."""
from __future__ import annotations


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a command reports as one ``error: <message>`` line with exit 2 instead of a traceback:
    bad input and its refusals (``ValueError``: ConfigError, ConfigMismatchError, ParsingError, checkpoint
    mismatch or corruption ...), missing files, and the library's data and store errors. Anything else
    is unexpected and keeps its traceback. Imported on first use, so ``--help`` stays fast."""
    from ..data.errors import DatasetError
    from ..data.synth.generate import SynthError
    from ..grounding.box_store import StoreError as GroundingStoreError
    from ..human_parsing.map_store import StoreError as ParsingStoreError

    return (ValueError, FileNotFoundError, FileExistsError, PermissionError, NotImplementedError, DatasetError,
            SynthError, GroundingStoreError, ParsingStoreError)
