"""The two git questions the trust checks ask: where is the work tree, and what did a file hold at a ref."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from replay.errors import ReplayError


class GitError(ReplayError):
    """git is missing, the folder is not a work tree, or the ref does not exist."""


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise GitError("git is not installed; pass an approval sha256 instead of a git ref")
    # A fixed executable and argv list; the ref is passed as one argument, never to a shell.
    return subprocess.run(  # noqa: S603
        [git, "-C", str(cwd), *args], capture_output=True, timeout=30, check=False
    )


def toplevel(folder: Path) -> Path:
    """The root of the git work tree holding ``folder``."""
    done = _git(folder, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise GitError(f"{folder} is not inside a git work tree")
    return Path(done.stdout.decode().strip()).resolve()


def file_at(top: Path, ref: str, relative: str) -> bytes | None:
    """The bytes of ``relative`` at ``ref``, or None when the file did not exist there."""
    if ref.startswith("-"):
        raise GitError(f"{ref!r} is not a git ref")
    check = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if check.returncode != 0:
        raise GitError(f"{ref!r} is not a commit in {top}")
    done = _git(top, "cat-file", "blob", f"{ref}:{relative}")
    if done.returncode != 0:
        return None
    return done.stdout
