"""Mutation-testing kills for the sandbox: every refusal names the path, its reason and why;
missing and non-directory listings say so; open errors become the right refusal."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from harness.errors import InvalidRequest, NotFound, SandboxViolation
from harness.tools.sandbox import Workspace, _refuse_loop_or_raise

pytestmark = [pytest.mark.tier0, pytest.mark.security]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("a")
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    (root / "inside-link.txt").symlink_to(root / "docs" / "a.txt")
    return Workspace(root)


def test_a_write_through_a_symlink_is_refused_by_name(ws: Workspace) -> None:
    with pytest.raises(SandboxViolation) as info:
        ws.resolve("inside-link.txt", for_write=True)
    assert str(info.value) == (
        "tool path 'inside-link.txt' refused (symlink_escape): writes never follow symlinks"
    )
    assert info.value.details == {"reason": "symlink_escape", "path": "'inside-link.txt'"}


def test_a_symlink_loop_is_refused_by_name(ws: Workspace) -> None:
    with pytest.raises(SandboxViolation) as info:
        ws.read_text("loop1/x.txt")
    assert str(info.value) == "tool path 'loop1/x.txt' refused (symlink_escape): symlink loop"


def test_loop_errors_refuse_and_other_errors_pass_through() -> None:
    with pytest.raises(SandboxViolation, match=r"^tool path 'p' refused \(symlink_escape\): symlink loop$"):
        _refuse_loop_or_raise("p", OSError(errno.ELOOP, "loop"))
    with pytest.raises(PermissionError):
        _refuse_loop_or_raise("p", PermissionError(errno.EACCES, "denied"))


def test_open_errors_become_the_right_refusal() -> None:
    with pytest.raises(SandboxViolation) as info:
        Workspace._refuse_open_error("x/y", OSError(errno.ELOOP, "loop"))
    assert str(info.value) == "tool path 'x/y' refused (symlink_escape): the path changed while opening"
    for code in (errno.ENOENT, errno.ENOTDIR):
        with pytest.raises(NotFound, match=r"^no file 'x/y' in the workspace$"):
            Workspace._refuse_open_error("x/y", OSError(code, "gone"))
    with pytest.raises(OSError, match="busy"):
        Workspace._refuse_open_error("x/y", OSError(errno.EBUSY, "busy"))


def test_listing_a_missing_or_non_directory_says_which(ws: Workspace) -> None:
    with pytest.raises(NotFound, match=r"^no directory 'nope' in the workspace$"):
        ws.list_files("nope")
    with pytest.raises(InvalidRequest, match=r"^'docs/a.txt' is not a directory in the workspace$"):
        ws.list_files("docs/a.txt")
    assert ws.list_files("docs") == ["docs/a.txt"]


def test_reading_through_a_file_as_if_it_were_a_directory_is_not_found(ws: Workspace) -> None:
    with pytest.raises(NotFound, match=r"^no file 'docs/a.txt/b' in the workspace$"):
        ws.read_text("docs/a.txt/b")
    assert os.path.isfile(ws.resolve("docs/a.txt"))
