"""Dataset readers: one small class per dataset layout, registered by name."""
from .base import (READERS, DatasetError, Reader, UnreadableImageWarning, check_image, get_reader,
                   list_readers, read_dataset, register)
from . import market  # noqa: F401  (registers market1501 and the synthetic domains)

__all__ = ["READERS", "DatasetError", "Reader", "UnreadableImageWarning", "check_image", "get_reader",
           "list_readers", "read_dataset", "register"]
