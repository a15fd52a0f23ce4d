"""How busy a catalog backend's connections are, for the metrics.

A backend reports it by having a `use()` method (the `ReportsUse` protocol): SQLite
its one connection's thread and the queries queued for it, a pooled backend its pool
(psycopg_pool's `get_stats()` has `pool_size`, `pool_available`, `requests_waiting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CatalogUse:
    size: int  # connections the backend holds (SQLite: its one)
    in_use: int  # of those, running a query now
    waiting: int  # queries waiting for a connection


@runtime_checkable
class ReportsUse(Protocol):
    def use(self) -> CatalogUse: ...
