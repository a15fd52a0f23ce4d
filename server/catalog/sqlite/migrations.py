"""The SQLite catalog's schema: numbered SQL scripts applied in order at start-up.

The version lives in `PRAGMA user_version`; a migration runs under the write lock
(BEGIN IMMEDIATE), so processes opening one file at once migrate it once.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        token_hash TEXT NOT NULL UNIQUE,
        device TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL,
        revoked_at REAL
    );
    CREATE TABLE pairing_codes (
        code_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires_at REAL NOT NULL,
        used_at REAL
    );
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        md5 TEXT NOT NULL,
        size INTEGER NOT NULL,
        format TEXT NOT NULL,
        mime TEXT NOT NULL,
        width INTEGER,
        height INTEGER,
        orientation INTEGER,
        taken_at TEXT,
        camera_make TEXT,
        camera_model TEXT,
        has_gps INTEGER NOT NULL,
        decodable INTEGER NOT NULL,
        thumbnail INTEGER,
        created_at REAL NOT NULL
    );
    CREATE INDEX blobs_md5 ON blobs(md5);
    CREATE TABLE entries (
        user_id INTEGER NOT NULL REFERENCES users(id),
        sha256 TEXT NOT NULL REFERENCES blobs(sha256),
        filename TEXT NOT NULL,
        uploaded_at REAL NOT NULL,
        taken_ts REAL NOT NULL,
        deleted_at REAL,
        PRIMARY KEY (user_id, sha256)
    );
    CREATE INDEX entries_library ON entries(user_id, taken_ts DESC, sha256 DESC)
        WHERE deleted_at IS NULL;
    CREATE INDEX entries_trash ON entries(user_id, deleted_at DESC, sha256 DESC)
        WHERE deleted_at IS NOT NULL;
    CREATE INDEX entries_sha256 ON entries(sha256);
    """,
    # 2: tus uploads. No foreign key to blobs: a finished upload's image is held by
    # its library entry, and the row must not keep a purged blob from being dropped.
    """
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        length INTEGER NOT NULL,
        "offset" INTEGER NOT NULL DEFAULT 0,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        image_sha256 TEXT,
        duplicate INTEGER
    );
    CREATE INDEX uploads_expires_at ON uploads(expires_at);
    """,
    # 3: accounts. A WeChat login maps its openid to one user; devices are listed by user.
    """
    ALTER TABLE users ADD COLUMN wechat_openid TEXT;
    CREATE UNIQUE INDEX users_wechat_openid ON users(wechat_openid)
        WHERE wechat_openid IS NOT NULL;
    CREATE INDEX tokens_user ON tokens(user_id);
    """,
    # 4: damage found by scrub: "missing" or "mismatch", and when it was found.
    """
    ALTER TABLE blobs ADD COLUMN damage TEXT;
    ALTER TABLE blobs ADD COLUMN damaged_at REAL;
    """,
    # 5: the timeline from indexes alone where it can be (sqlite_timeline): a page's
    # entries from the library index, which now holds every column of them; whether
    # an entry is in the trash, and whether its blob is damaged, from partial indexes
    # of those few rows; and a blob's sha256 from its md5 without its row.
    """
    DROP INDEX entries_library;
    CREATE INDEX entries_library
        ON entries(user_id, taken_ts DESC, sha256 DESC, filename, uploaded_at, deleted_at)
        WHERE deleted_at IS NULL;
    CREATE INDEX entries_trashed ON entries(user_id, sha256) WHERE deleted_at IS NOT NULL;
    CREATE INDEX blobs_damaged ON blobs(sha256) WHERE damage IS NOT NULL;
    DROP INDEX blobs_md5;
    CREATE INDEX blobs_md5 ON blobs(md5, sha256);
    """,
    # 6: whether the file carried any EXIF (phones may hand over a re-encoded copy
    # without it); NULL for blobs stored before this was recorded.
    """
    ALTER TABLE blobs ADD COLUMN exif INTEGER;
    """,
    # 7: the derived-image work queue. A decode is counted before it starts, so one that
    # kills its worker (or the server) is not retried for ever; pending work is found by
    # a partial index however large the library.
    """
    ALTER TABLE blobs ADD COLUMN thumbnail_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX blobs_thumbnail_pending ON blobs(created_at)
        WHERE thumbnail IS NULL AND decodable = 1 AND damage IS NULL;
    """,
    # 8: budgets. Wrong pairing guesses each live code has outlived; a user's open
    # uploads are counted at every creation.
    """
    ALTER TABLE pairing_codes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX uploads_user ON uploads(user_id, expires_at);
    """,
    # 9: what several processes share: attempt windows by kind and key (the pairing and
    # login throttles), and leases on derived images being made.
    """
    CREATE TABLE throttles (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        hits INTEGER NOT NULL,
        counted INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
    CREATE INDEX throttles_expiry ON throttles(kind, expires_at);
    CREATE TABLE leases (
        key TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 10: an md5 check is one search: each entry carries its blob's md5, and the library's
    # entries are indexed by it (with the sha256 the damage check needs), in place of
    # the blobs' md5 index and a search of the entries' key for each blob found there.
    # (The old index goes first, so that the new one is built in the pages it frees;
    # deleted_at, always NULL there, is in it so that SQLite reads it as covering.)
    """
    DROP INDEX blobs_md5;
    ALTER TABLE entries ADD COLUMN md5 TEXT;
    UPDATE entries SET md5 = (SELECT b.md5 FROM blobs b WHERE b.sha256 = entries.sha256);
    CREATE INDEX entries_md5 ON entries(user_id, md5, sha256, deleted_at)
        WHERE deleted_at IS NULL;
    """,
    # 11: a blob that loses its last entry is marked, not forgotten: gc deletes its row
    # (and then its file) only a grace period later, so an ingest of the same bytes in
    # another process meanwhile finds the row and clears the mark instead. Blobs nothing
    # refers to already are marked now.
    """
    ALTER TABLE blobs ADD COLUMN unreferenced_at REAL;
    CREATE INDEX blobs_unreferenced ON blobs(unreferenced_at) WHERE unreferenced_at IS NOT NULL;
    UPDATE blobs SET unreferenced_at = (julianday('now') - 2440587.5) * 86400.0
        WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256);
    """,
    # 12: videos. What a blob is (`photo` or `video`, every blob stored before is a
    # photo), a video's duration in seconds and its codec.
    """
    ALTER TABLE blobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'photo';
    ALTER TABLE blobs ADD COLUMN duration REAL;
    ALTER TABLE blobs ADD COLUMN codec TEXT;
    """,
    # 13: the server's own random keys (the one signing media URLs), made once and kept
    # with the catalog, so that a restart keeps the URLs it issued working.
    """
    CREATE TABLE server_keys (
        name TEXT PRIMARY KEY,
        secret BLOB NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 14: videos' playable previews (H.264 MP4s made for phones): NULL while one is to
    # come (videos stored before are found by the partial index and decided then), and
    # the transcodes counted before each starts, so one that kills its worker is not
    # retried for ever.
    """
    ALTER TABLE blobs ADD COLUMN preview TEXT;
    ALTER TABLE blobs ADD COLUMN preview_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX blobs_preview_pending ON blobs(created_at)
        WHERE kind = 'video' AND preview IS NULL AND decodable = 1 AND damage IS NULL;
    """,
    # 15: motion photos (a still with its MP4 appended, one original): where the video
    # part starts in the blob and its length; NULL for every other blob (and for those
    # stored before, which stay plain photos).
    """
    ALTER TABLE blobs ADD COLUMN motion_offset INTEGER;
    ALTER TABLE blobs ADD COLUMN motion_length INTEGER;
    """,
    # 16: Live Photos: Apple's ContentIdentifier of a still or a MOV, by which the two
    # halves are paired in a library that holds both (found through this index).
    """
    ALTER TABLE blobs ADD COLUMN live_id TEXT;
    CREATE INDEX blobs_live ON blobs(live_id, kind, sha256) WHERE live_id IS NOT NULL;
    """,
]
