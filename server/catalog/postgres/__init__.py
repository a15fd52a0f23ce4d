"""The catalog on PostgreSQL, for several server processes sharing one library.

psycopg 3 (asyncio connections and psycopg_pool): one module per aggregate (throttles
and claims among them, what the processes share), each a mixin on the one pool
(`connection`); `PostgresCatalog` is all of them. Versioned
migrations (`migrations`) run once, under an advisory lock, when the catalog starts.
"""

from __future__ import annotations

from .accounts import PostgresAccounts
from .blobs import PostgresBlobs
from .claims import PostgresClaims
from .connection import PoolSettings
from .keys import PostgresKeys
from .library import PostgresLibrary
from .migrations import MIGRATIONS
from .previews import PostgresPreviews
from .throttle import PostgresThrottles
from .uploads import PostgresUploads

__all__ = ["MIGRATIONS", "PoolSettings", "PostgresCatalog"]


class PostgresCatalog(
    PostgresAccounts,
    PostgresLibrary,
    PostgresBlobs,
    PostgresPreviews,
    PostgresUploads,
    PostgresThrottles,
    PostgresClaims,
    PostgresKeys,
):
    """Every aggregate on one pool (see `server.catalog.Catalog`); `await start()` first."""
