"""A tenant's workspace seed files: checked, staged beside their final place, then moved in whole.

``harness tenants create --files DIR`` copies DIR into every run's workspace. A symlink in DIR
would make an outside file tenant data (or loop forever), so any symlink, device, FIFO or socket
is refused before anything is created; the copy is staged and renamed into place only after the
tenant's database rows committed, so an error never leaves a half-created tenant.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from harness.errors import InvalidRequest


def check_source(source: Path) -> None:
    """Refuse a source tree holding anything but regular files and folders (symlinks above all)."""
    if source.is_symlink():
        raise InvalidRequest(f"--files {source} is a symlink; pass the real folder (nothing was created)")
    for directory, dirnames, filenames in os.walk(source, followlinks=False):
        for entry in sorted(dirnames + filenames):
            path = Path(directory, entry)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise InvalidRequest(
                    f"--files: {path.relative_to(source)} is a symlink; tenant files must be regular"
                    " files and folders (nothing was created)"
                )
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise InvalidRequest(
                    f"--files: {path.relative_to(source)} is not a regular file or folder"
                    " (nothing was created)"
                )


def stage_tenant_files(source: Path, files_root: Path, tenant_id: str) -> Path:
    """Check ``source`` and copy it into a staging folder under ``files_root``; returns the folder."""
    check_source(source)
    target = files_root / tenant_id
    if target.exists() or target.is_symlink():
        raise InvalidRequest(
            f"tenant files folder {target} already exists; remove it or choose another tenant id"
            " (nothing was created)"
        )
    files_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{tenant_id}-", dir=files_root))
    try:
        # symlinks=True: should a link appear after the check, it is copied as a link, never followed.
        shutil.copytree(source, staging / "tree", symlinks=True)
        check_source(staging / "tree")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def install_tenant_files(staging: Path, target: Path) -> None:
    """Move a staged copy into place in one rename."""
    os.rename(staging / "tree", target)
    staging.rmdir()
