"""Pillow and PyAV side of the server: sniffing, header metadata and derived images.

The request path only sniffs and reads headers (metadata.py, bounded by scan.py).
Pixels are decoded in worker processes (worker.py, driven by pool.py), under a budget
decided from the header (budget.py), every size from one decode (derived.py). Videos
are read only in the workers: metadata (video.py, after the capped box walk of
bmff.py) and posters (poster.py); motion photos' video parts are located by motion.py.
"""

from .budget import DEFAULT_BUDGET
from .derived import THUMBNAIL_SIZES, THUMBNAIL_VERSION, Limits, make_thumbnail, render
from .formats import SNIFF_BYTES, Kind, is_video, sniff, sniff_media, sniff_video
from .metadata import Metadata, NotAnImage, read_metadata
from .motion import EmbeddedVideo, find_motion_video, live_photo_identifier
from .pool import DecodeFailed, DecodePool, PoolLimits

__all__ = [
    "DEFAULT_BUDGET",
    "SNIFF_BYTES",
    "THUMBNAIL_SIZES",
    "THUMBNAIL_VERSION",
    "DecodeFailed",
    "DecodePool",
    "EmbeddedVideo",
    "Kind",
    "Limits",
    "Metadata",
    "NotAnImage",
    "PoolLimits",
    "find_motion_video",
    "is_video",
    "live_photo_identifier",
    "make_thumbnail",
    "read_metadata",
    "render",
    "sniff",
    "sniff_media",
    "sniff_video",
]
