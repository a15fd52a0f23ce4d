"""What the catalog tests share: records made to order, and SQLite's own file."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from server.catalog import BlobRecord, UploadRecord

# What these tests look at is SQLite's own file (a side connection, PRAGMAs).
sqlite_only = pytest.mark.parametrize("catalog", ["sqlite"], indirect=True)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite3"


def blob(n: int | str, taken_at: str | None = None) -> BlobRecord:
    seed = str(n).encode()
    return BlobRecord(
        sha256=hashlib.sha256(seed).hexdigest(),
        md5=hashlib.md5(seed).hexdigest(),
        size=len(seed),
        format="JPEG",
        mime="image/jpeg",
        width=4,
        height=3,
        orientation=None,
        taken_at=taken_at,
        camera_make=None,
        camera_model=None,
        has_gps=False,
        decodable=True,
        thumbnail=None,
    )


def side_connection(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=10)


def upload(upload_id: str, user_id: int, expires_at: float = 100.0) -> UploadRecord:
    return UploadRecord(
        id=upload_id,
        user_id=user_id,
        length=1000,
        offset=0,
        metadata={"filename": "5rW36L65LmpwZw==", "flag": ""},
        created_at=1.0,
        expires_at=expires_at,
    )
