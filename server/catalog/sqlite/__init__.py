"""The embedded catalog: one SQLite file in WAL mode, used from one thread.

One module per aggregate (accounts, library, blobs, uploads, and the throttles and
claims several processes would share), each a mixin on the one connection;
`SQLiteCatalog` is all of them. Migrations are numbered SQL scripts (`migrations`)
applied in order at start-up; the version lives in `PRAGMA user_version`.
"""

from __future__ import annotations

from .accounts import LAST_SEEN_RESOLUTION, SQLiteAccounts
from .blobs import SQLiteBlobs
from .claims import SQLiteClaims
from .keys import SQLiteKeys
from .library import SQLiteLibrary
from .migrations import MIGRATIONS
from .previews import SQLitePreviews
from .throttle import SQLiteThrottles
from .uploads import SQLiteUploads

__all__ = ["LAST_SEEN_RESOLUTION", "MIGRATIONS", "SQLiteCatalog"]


class SQLiteCatalog(
    SQLiteAccounts,
    SQLiteLibrary,
    SQLiteBlobs,
    SQLitePreviews,
    SQLiteUploads,
    SQLiteThrottles,
    SQLiteClaims,
    SQLiteKeys,
):
    """Every aggregate on one file (see `server.catalog.Catalog`)."""
