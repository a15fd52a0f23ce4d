"""Pillow side of the server: sniffing, header metadata and derived images.

The request path only sniffs and reads headers (metadata.py, bounded by scan.py).
Pixels are decoded in worker processes (worker.py, driven by pool.py), under a budget
decided from the header (budget.py), every size from one decode (derived.py).
"""

from .budget import DEFAULT_BUDGET
from .derived import THUMBNAIL_SIZES, THUMBNAIL_VERSION, Limits, make_thumbnail, render
from .formats import SNIFF_BYTES, Kind, sniff
from .metadata import Metadata, NotAnImage, read_metadata
from .pool import DecodeFailed, DecodePool, PoolLimits

__all__ = [
    "DEFAULT_BUDGET",
    "SNIFF_BYTES",
    "THUMBNAIL_SIZES",
    "THUMBNAIL_VERSION",
    "DecodeFailed",
    "DecodePool",
    "Kind",
    "Limits",
    "Metadata",
    "NotAnImage",
    "PoolLimits",
    "make_thumbnail",
    "read_metadata",
    "render",
    "sniff",
]
