"""The PostgreSQL catalog's schema, versioned, and migrating it once among many.

The schema is written for PostgreSQL: identity keys, booleans, jsonb metadata, a
"C" collation for hashes (bytewise order, the same as SQLite's, for keyset pages and
scrub's walk), covering and partial indexes. Times stay seconds since the epoch
(double precision), as the records and the page cursors carry them: a cursor's
position must compare equal to the row it came from, to the last bit.

`schema_migrations` records each version applied. Migrating runs in one transaction
under an advisory lock: processes starting at once wait for the first, then find
nothing left to do; a failed migration leaves no part of itself (DDL is transactional).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import CatalogTooNew

if TYPE_CHECKING:
    from .connection import Conn

MIGRATION_LOCK = 0x7475626569  # "tubei": the advisory lock key held while migrating

MIGRATIONS: list[str] = [
    # 1: everything the SQLite catalog reached in its seven steps, at once.
    """
    CREATE TABLE users (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        created_at double precision NOT NULL,
        wechat_openid text UNIQUE
    );
    CREATE TABLE tokens (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users(id),
        token_hash text COLLATE "C" NOT NULL UNIQUE,
        device text NOT NULL,
        created_at double precision NOT NULL,
        last_seen_at double precision,
        revoked_at double precision
    );
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE pairing_codes (
        code_hash text COLLATE "C" PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users(id),
        expires_at double precision NOT NULL,
        used_at double precision
    );
    CREATE TABLE blobs (
        sha256 text COLLATE "C" PRIMARY KEY,
        md5 text COLLATE "C" NOT NULL,
        size bigint NOT NULL,
        format text NOT NULL,
        mime text NOT NULL,
        width integer,
        height integer,
        orientation smallint,
        taken_at text,
        camera_make text,
        camera_model text,
        has_gps boolean NOT NULL,
        decodable boolean NOT NULL,
        thumbnail boolean,
        thumbnail_attempts integer NOT NULL DEFAULT 0,
        damage text CHECK (damage IN ('missing', 'mismatch')),
        damaged_at double precision,
        exif boolean,
        created_at double precision NOT NULL
    );
    CREATE INDEX blobs_md5 ON blobs(md5) INCLUDE (sha256);
    CREATE INDEX blobs_damaged ON blobs(sha256) WHERE damage IS NOT NULL;
    CREATE INDEX blobs_thumbnail_pending ON blobs(created_at)
        WHERE thumbnail IS NULL AND decodable AND damage IS NULL;
    CREATE TABLE entries (
        user_id bigint NOT NULL REFERENCES users(id),
        sha256 text COLLATE "C" NOT NULL REFERENCES blobs(sha256),
        filename text NOT NULL,
        uploaded_at double precision NOT NULL,
        taken_ts double precision NOT NULL,
        deleted_at double precision,
        PRIMARY KEY (user_id, sha256)
    );
    CREATE INDEX entries_library ON entries(user_id, taken_ts DESC, sha256 DESC)
        INCLUDE (filename, uploaded_at) WHERE deleted_at IS NULL;
    CREATE INDEX entries_trash ON entries(user_id, deleted_at DESC, sha256 DESC)
        INCLUDE (filename, uploaded_at) WHERE deleted_at IS NOT NULL;
    CREATE INDEX entries_sha256 ON entries(sha256);
    CREATE TABLE uploads (
        id text COLLATE "C" PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users(id),
        length bigint NOT NULL CHECK (length >= 0),
        "offset" bigint NOT NULL DEFAULT 0 CHECK ("offset" BETWEEN 0 AND length),
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at double precision NOT NULL,
        expires_at double precision NOT NULL,
        image_sha256 text COLLATE "C",
        duplicate boolean
    );
    CREATE INDEX uploads_expires_at ON uploads(expires_at);
    """,
    # 2: budgets. Wrong pairing guesses each live code has outlived; a user's open
    # uploads are counted at every creation.
    """
    ALTER TABLE pairing_codes ADD COLUMN failures integer NOT NULL DEFAULT 0;
    CREATE INDEX uploads_user ON uploads(user_id, expires_at);
    """,
    # 3: what several processes share: attempt windows by kind and key (the pairing and
    # login throttles), and leases on derived images being made.
    """
    CREATE TABLE throttles (
        kind text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        hits integer NOT NULL,
        counted boolean NOT NULL,
        expires_at double precision NOT NULL,
        PRIMARY KEY (kind, key)
    );
    CREATE INDEX throttles_expiry ON throttles(kind, expires_at);
    CREATE TABLE leases (
        key text COLLATE "C" PRIMARY KEY,
        holder text NOT NULL,
        expires_at double precision NOT NULL
    );
    """,
    # 4: an md5 check is one search: each entry carries its blob's md5, and the library's
    # entries are indexed by it (with the sha256 the damage check needs), in place of
    # the blobs' md5 index and a search of the entries' key for each blob found there.
    """
    ALTER TABLE entries ADD COLUMN md5 text COLLATE "C";
    UPDATE entries e SET md5 = b.md5 FROM blobs b WHERE b.sha256 = e.sha256;
    ALTER TABLE entries ALTER COLUMN md5 SET NOT NULL;
    CREATE INDEX entries_md5 ON entries(user_id, md5) INCLUDE (sha256) WHERE deleted_at IS NULL;
    DROP INDEX blobs_md5;
    """,
    # 5: a blob that loses its last entry is marked, not forgotten: gc deletes its row
    # (and then its file) only a grace period later, so an ingest of the same bytes in
    # another process meanwhile finds the row and clears the mark instead. Blobs nothing
    # refers to already are marked now.
    """
    ALTER TABLE blobs ADD COLUMN unreferenced_at double precision;
    CREATE INDEX blobs_unreferenced ON blobs(unreferenced_at) WHERE unreferenced_at IS NOT NULL;
    UPDATE blobs SET unreferenced_at = extract(epoch FROM now())
        WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.sha256 = blobs.sha256);
    """,
    # 6: videos. What a blob is (`photo` or `video`, every blob stored before is a
    # photo), a video's duration in seconds and its codec.
    """
    ALTER TABLE blobs ADD COLUMN kind text NOT NULL DEFAULT 'photo';
    ALTER TABLE blobs ADD COLUMN duration double precision;
    ALTER TABLE blobs ADD COLUMN codec text;
    """,
    # 7: the server's own random keys (the one signing media URLs), made once and shared
    # by every process on this catalog, so that a URL one issues works on all of them.
    """
    CREATE TABLE server_keys (
        name text COLLATE "C" PRIMARY KEY,
        secret bytea NOT NULL,
        created_at double precision NOT NULL
    );
    """,
    # 8: videos' playable previews (H.264 MP4s made for phones): NULL while one is to
    # come (videos stored before are found by the partial index and decided then), and
    # the transcodes counted before each starts, so one that kills its worker is not
    # retried for ever.
    """
    ALTER TABLE blobs ADD COLUMN preview text
        CHECK (preview IN ('made', 'unneeded', 'failed'));
    ALTER TABLE blobs ADD COLUMN preview_attempts integer NOT NULL DEFAULT 0;
    CREATE INDEX blobs_preview_pending ON blobs(created_at)
        WHERE kind = 'video' AND preview IS NULL AND decodable AND damage IS NULL;
    """,
    # 9: motion photos (a still with its MP4 appended, one original): where the video
    # part starts in the blob and its length; NULL for every other blob (and for those
    # stored before, which stay plain photos).
    """
    ALTER TABLE blobs ADD COLUMN motion_offset bigint CHECK (motion_offset > 0);
    ALTER TABLE blobs ADD COLUMN motion_length bigint CHECK (motion_length > 0);
    """,
    # 10: Live Photos: Apple's ContentIdentifier of a still or a MOV, by which the two
    # halves are paired in a library that holds both (found through this index).
    """
    ALTER TABLE blobs ADD COLUMN live_id text COLLATE "C";
    CREATE INDEX blobs_live ON blobs(live_id, kind, sha256) WHERE live_id IS NOT NULL;
    """,
]


async def migrate(conn: Conn) -> int:
    """Apply what MIGRATIONS has beyond the database's version; how many were applied."""
    async with conn.transaction():
        # Waiting for another process's migration, or building an index of a large
        # table, may take longer than a request's statement_timeout.
        await conn.execute("SET LOCAL statement_timeout = 0")
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
        row = await cursor.fetchone()
        version = int(row["v"]) if row else 0
        if version > len(MIGRATIONS):
            raise CatalogTooNew(
                f"the catalog is at schema {version}, newer than this server knows "
                f"({len(MIGRATIONS)}): upgrade Tubei"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            await conn.execute(MIGRATIONS[number - 1].encode())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
        return len(MIGRATIONS) - version
