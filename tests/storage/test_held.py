"""Temp files held by their writer: renamed into place whole, spared while held."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from server.storage.held import HELD_SUFFIX, LEGACY_STALE, held_temp, remove_unheld


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_held_temp_file_takes_its_place_whole(tmp_path: Path) -> None:
    dest = tmp_path / "a-360.jpg"
    dest.write_bytes(b"old")
    with held_temp(dest) as file:
        file.write(b"new bytes")
        [temp] = temps(tmp_path)
        assert temp.name.startswith(".a-360.jpg.") and temp.name.endswith(HELD_SUFFIX)
        assert dest.read_bytes() == b"old"
        # Held: no clean-up takes it, however old it looks.
        age(temp, 30 * 86400)
        assert remove_unheld([temp], 0) == 0
    assert dest.read_bytes() == b"new bytes"
    assert temps(tmp_path) == []


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "b-360.jpg"
    with pytest.raises(OSError), held_temp(dest) as file:
        file.write(b"half")
        raise OSError("disk gone")
    assert list(tmp_path.iterdir()) == []


def test_unheld_temp_files_go_by_age_and_older_versions_once_stale(tmp_path: Path) -> None:
    dead = tmp_path / f".c-360.jpg.1{HELD_SUFFIX}"  # its writer died before the rename
    young = tmp_path / f".d-360.jpg.2{HELD_SUFFIX}"
    legacy = tmp_path / ".e-360.jpg.3.tmp"  # an older version's: unlocked even while written
    stale_legacy = tmp_path / ".f-360.jpg.4.tmp"
    for path in (dead, young, legacy, stale_legacy):
        path.write_bytes(b"x")
    age(dead, 120)
    age(legacy, 120)
    age(stale_legacy, LEGACY_STALE + 60)
    assert remove_unheld(temps(tmp_path), 60) == 2
    assert temps(tmp_path) == [young, legacy]
    assert remove_unheld(temps(tmp_path), 0) == 1
    assert temps(tmp_path) == [legacy]
