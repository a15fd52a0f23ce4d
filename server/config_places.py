"""Where a server keeps things, as its location settings say: the folders of originals,
derived images, uploads in progress and quarantine, the catalog's URL, the object
storage with its credentials. Settings (config.py) declares those settings; this is
what they mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .config_values import SettingsError
from .storage.s3_config import S3Location, parse_s3_url


class Places:
    """Mixed into Settings, whose fields these are."""

    data: Path
    blobs: str
    thumbs: str
    catalog: str
    blobs_s3: S3Location | None
    thumbs_s3: S3Location | None

    @property
    def blobs_dir(self) -> Path:
        """The folder of originals on the local disk (not used with --blobs s3://)."""
        if self.blobs.startswith("file://"):
            return Path(self.blobs.removeprefix("file://").rstrip("/") or "/")
        return self.data / "blobs"

    @property
    def blobs_in_s3(self) -> bool:
        return self.blobs.startswith("s3://")

    def s3_location(self, environ: Mapping[str, str], which: str = "blobs") -> S3Location:
        """Where --blobs (or --thumbs) s3://... is, with its credentials: resolved once,
        by from_sources."""
        resolved: S3Location | None = getattr(self, f"{which}_s3")
        if resolved is not None:
            return resolved
        try:
            return parse_s3_url(getattr(self, which), environ)
        except ValueError as error:
            raise SettingsError(f"--{which} (TUBEI_{which.upper()}): {error}") from None

    @property
    def thumbs_dir(self) -> Path:
        """Derived images on this disk (with object storage, this process's cache)."""
        if self.thumbs.startswith("file://"):
            return Path(self.thumbs.removeprefix("file://").rstrip("/") or "/")
        return self.data / "thumbs"

    @property
    def tmp_dir(self) -> Path:
        return self.data / "tmp"

    @property
    def tus_dir(self) -> Path:
        return self.tmp_dir / "tus"

    @property
    def quarantine_dir(self) -> Path:
        """Beside the blobs' folder: a quarantined file is renamed there (one file system)."""
        return self.blobs_dir.parent / "quarantine"

    @property
    def catalog_url(self) -> str:
        """The catalog's URL, the SQLite file under --data unless --catalog says otherwise."""
        return self.catalog or f"sqlite://{self.catalog_path.absolute()}"

    @property
    def catalog_is_sqlite(self) -> bool:
        return self.catalog_url.startswith("sqlite:")

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog's file (only meaningful when the catalog is SQLite)."""
        if self.catalog.startswith("sqlite://"):
            return Path(self.catalog.removeprefix("sqlite://"))
        return self.data / "catalog.sqlite3"
