"""The tool workspace: tool-supplied paths are validated as text, then against the disk.

A path is refused as a string (absolute, ``..``, encodings, look-alike characters, control
characters, reserved names, excessive length) before anything on disk is touched. Only
then are symlinks resolved, and every existing component must stay inside the workspace
root. Files are opened component by component with ``O_NOFOLLOW`` relative to the root's
directory descriptor, so a symlink swapped in after the check cannot redirect the open.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Final, NoReturn

from harness.errors import ConfigError, InvalidRequest, NotFound, SandboxViolation

__all__ = ["MAX_COMPONENT_BYTES", "MAX_PATH_BYTES", "SandboxReason", "Workspace", "parse_tool_path"]

MAX_PATH_BYTES: Final = 1024
MAX_COMPONENT_BYTES: Final = 255  # NAME_MAX on Linux and macOS


class SandboxReason(StrEnum):
    """Why a tool path was refused; carried as ``SandboxViolation.details["reason"]``."""

    ABSOLUTE = "absolute"
    TRAVERSAL = "traversal"
    NUL_BYTE = "nul_byte"
    ENCODED = "encoded"
    BACKSLASH = "backslash"
    SYMLINK_ESCAPE = "symlink_escape"
    DEVICE = "device"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    HIDDEN_CONTROL_CHARS = "hidden_control_chars"
    RESERVED_NAME = "reserved_name"


_PERCENT_ESCAPE: Final = re.compile(r"%(?:[0-9A-Fa-f]{2}|[uU][0-9A-Fa-f]{4})")
_DRIVE_PREFIX: Final = re.compile(r"[A-Za-z]:")
_URL_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Characters that look like (or NFKC-fold into) path syntax. On this filesystem they are
# inert, but any layer that normalises Unicode later would turn them into real syntax.
_PATH_SYNTAX: Final = frozenset("./\\:%~")
_LOOKALIKES: Final = frozenset("\u2215\u2044\u29f8\u29f9\u2216\u3002\uff61\u0337\u0338\u1735")
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cn"})
# Names Windows maps to devices with any extension; refused so a workspace can be synced
# to, or shared with, a Windows host without a file becoming a device.
_WINDOWS_DEVICES: Final = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"}
    | {f"{kind}{n}" for kind in ("com", "lpt") for n in (*"0123456789", "¹", "²", "³")}
)
# A tool writing into .git/ (hooks, config) gets code execution the next time anyone
# runs git in the workspace; reading .git/config can leak credentials in remote URLs.
_RESERVED_DIRS: Final = frozenset({".git"})


def _refuse(reason: SandboxReason, user_path: object, why: str) -> NoReturn:
    shown = repr(user_path)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise SandboxViolation(
        f"tool path {shown} refused ({reason}): {why}",
        reason=reason.value,
        path=shown,
    )


def _refuse_loop_or_raise(user_path: str, exc: OSError) -> NoReturn:
    if exc.errno == errno.ELOOP:
        _refuse(SandboxReason.SYMLINK_ESCAPE, user_path, "symlink loop")
    raise exc


def _char_problem(ch: str) -> SandboxReason | None:
    if ch.isascii():
        if ch < " " or ch == "\x7f":
            return SandboxReason.HIDDEN_CONTROL_CHARS
        return None
    category = unicodedata.category(ch)
    if category == "Cs":
        # Lone surrogates are how Python carries undecodable bytes (overlong UTF-8 etc.).
        return SandboxReason.ENCODED
    if category in _HIDDEN_CATEGORIES:
        return SandboxReason.HIDDEN_CONTROL_CHARS
    if ch in _LOOKALIKES or _PATH_SYNTAX.intersection(unicodedata.normalize("NFKC", ch)):
        return SandboxReason.ENCODED
    return None


def _check_characters(user_path: str) -> None:
    if "\x00" in user_path:
        _refuse(SandboxReason.NUL_BYTE, user_path, "NUL bytes truncate paths in C APIs")
    for ch in user_path:
        problem = _char_problem(ch)
        if problem is not None:
            _refuse(problem, user_path, f"character U+{ord(ch):04X} is not allowed in a path")
    if _PERCENT_ESCAPE.search(user_path):
        _refuse(SandboxReason.ENCODED, user_path, "percent-encoded sequences are not decoded")


def _check_anchoring(user_path: str) -> None:
    if user_path.startswith(("/", "\\", "~")) or _DRIVE_PREFIX.match(user_path):
        _refuse(SandboxReason.ABSOLUTE, user_path, "use a path relative to the workspace root")
    if _URL_SCHEME.match(user_path):
        _refuse(SandboxReason.ABSOLUTE, user_path, "URLs are not workspace paths")
    if "\\" in user_path:
        _refuse(SandboxReason.BACKSLASH, user_path, "use '/' as the only separator")


def _check_component(user_path: str, part: str) -> None:
    if set(part) == {"."}:
        _refuse(SandboxReason.TRAVERSAL, user_path, "'..' components are not allowed")
    if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
        _refuse(SandboxReason.TOO_LONG, user_path, f"a name exceeds {MAX_COMPONENT_BYTES} bytes")
    folded = part.casefold()
    if folded.split(".", 1)[0].rstrip(" ") in _WINDOWS_DEVICES or folded in _RESERVED_DIRS:
        _refuse(SandboxReason.RESERVED_NAME, user_path, f"{part!r} is a reserved name")
    if part.endswith((".", " ")):
        _refuse(SandboxReason.RESERVED_NAME, user_path, "names may not end in '.' or ' '")


def parse_tool_path(user_path: object, *, allow_root: bool = False) -> tuple[str, ...]:
    """Validate a tool-supplied path as text only and return its components.

    Touches nothing on disk. Raises ``SandboxViolation`` with a ``reason`` detail.
    """
    if not isinstance(user_path, str) or not user_path:
        _refuse(SandboxReason.EMPTY, user_path, "a tool path must be a non-empty string")
    if len(user_path) > MAX_PATH_BYTES or (
        len(user_path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES
    ):
        _refuse(SandboxReason.TOO_LONG, user_path, f"paths are capped at {MAX_PATH_BYTES} bytes")
    _check_characters(user_path)
    _check_anchoring(user_path)
    parts = tuple(part for part in user_path.split("/") if part not in ("", "."))
    for part in parts:
        _check_component(user_path, part)
    if not parts and not allow_root:
        _refuse(SandboxReason.EMPTY, user_path, "the path names no file inside the workspace")
    return parts


class Workspace:
    """A directory tools may read and write, and nothing outside it."""

    def __init__(self, root: Path) -> None:
        try:
            real = Path(root).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ConfigError(f"workspace root {str(root)!r} does not exist: {exc}") from exc
        if not real.is_dir():
            raise ConfigError(f"workspace root {str(root)!r} is not a directory")
        self._root = real

    @property
    def root(self) -> Path:
        """The workspace's real (symlink-free) absolute path."""
        return self._root

    def resolve(self, user_path: str, *, for_write: bool = False) -> Path:
        """Validate a tool-supplied relative path and return its real path inside the workspace."""
        parts = parse_tool_path(user_path)
        return self._check_on_disk(user_path, parts, for_write=for_write)

    def list_files(self, subdir: str = ".") -> list[str]:
        """Sorted root-relative POSIX paths of regular files under ``subdir``; never follows
        symlinks out of the workspace or into directories."""
        start = self._check_on_disk(subdir, parse_tool_path(subdir, allow_root=True))
        if not start.exists():
            raise NotFound(f"no directory {subdir!r} in the workspace")
        if not start.is_dir():
            raise InvalidRequest(f"{subdir!r} is not a directory in the workspace")
        found: list[str] = []
        pending = [start]
        while pending:
            directory = pending.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    relative = Path(entry.path).relative_to(self._root).as_posix()
                    try:
                        parse_tool_path(relative)
                    except SandboxViolation:
                        continue  # list only what resolve() would accept
                    if entry.is_symlink():
                        if self._is_regular_inside(entry.path):
                            found.append(relative)
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        found.append(relative)
        return sorted(found)

    def read_text(self, user_path: str, *, max_bytes: int = 65536) -> str:
        """Read at most ``max_bytes`` of a regular file as UTF-8 (undecodable bytes replaced)."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        target = self.resolve(user_path)
        # O_NONBLOCK: opening a FIFO swapped in after the check must not hang the worker.
        fd = self._open_beneath(user_path, target, os.O_RDONLY | os.O_NONBLOCK)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise InvalidRequest(f"{user_path!r} is a directory, not a file")
            if not stat.S_ISREG(mode):
                _refuse(SandboxReason.DEVICE, user_path, "only regular files can be read")
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(max_bytes)
        return data.decode("utf-8", errors="replace")

    def path_for_write(self, user_path: str) -> Path:
        """Validate a path for writing (no symlinks at all) and create its parent directories."""
        target = self.resolve(user_path, for_write=True)
        parts = target.relative_to(self._root).parts
        dir_fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=dir_fd)
                dir_fd = self._step_into(user_path, dir_fd, part)
        finally:
            os.close(dir_fd)
        return target

    def _check_on_disk(
        self, user_path: str, parts: tuple[str, ...], *, for_write: bool = False
    ) -> Path:
        current = self._root
        for part in parts:
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break  # nothing deeper exists, so nothing deeper can be a symlink
            except OSError as exc:
                _refuse_loop_or_raise(user_path, exc)
            if stat.S_ISLNK(mode):
                if for_write:
                    _refuse(SandboxReason.SYMLINK_ESCAPE, user_path, "writes never follow symlinks")
                if not self._inside(os.path.realpath(current)):
                    _refuse(SandboxReason.SYMLINK_ESCAPE, user_path, "a symlink leads outside")
        target = Path(os.path.realpath(self._root.joinpath(*parts)))
        if not self._inside(target):
            _refuse(SandboxReason.SYMLINK_ESCAPE, user_path, "the path resolves outside")
        try:
            info = os.stat(target)
        except (FileNotFoundError, NotADirectoryError):
            return target
        except OSError as exc:
            _refuse_loop_or_raise(user_path, exc)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            _refuse(SandboxReason.DEVICE, user_path, "devices, FIFOs and sockets are off limits")
        if for_write and stat.S_ISDIR(info.st_mode):
            raise InvalidRequest(f"{user_path!r} is a directory; cannot write to it")
        if for_write and info.st_nlink > 1:
            _refuse(
                SandboxReason.SYMLINK_ESCAPE,
                user_path,
                "the file has other hard links; writing could change a file outside",
            )
        return target

    def _inside(self, real_path: str | Path) -> bool:
        return Path(real_path).is_relative_to(self._root)

    def _is_regular_inside(self, link: str) -> bool:
        real = os.path.realpath(link)
        if not self._inside(real):
            return False
        try:
            return stat.S_ISREG(os.stat(real).st_mode)
        except OSError:
            return False

    def _step_into(self, user_path: str, dir_fd: int, part: str) -> int:
        """Open ``part`` under ``dir_fd`` as a directory without following a symlink; closes
        ``dir_fd`` on success and returns the new descriptor."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            next_fd = os.open(part, flags, dir_fd=dir_fd)
        except OSError as exc:
            # O_DIRECTORY|O_NOFOLLOW reports a symlink as ENOTDIR, not ELOOP.
            if exc.errno == errno.ENOTDIR and stat.S_ISLNK(os.lstat(part, dir_fd=dir_fd).st_mode):
                _refuse(SandboxReason.SYMLINK_ESCAPE, user_path, "the path changed while opening")
            self._refuse_open_error(user_path, exc)
        os.close(dir_fd)
        return next_fd

    def _open_beneath(self, user_path: str, target: Path, flags: int) -> int:
        parts = target.relative_to(self._root).parts
        dir_fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                dir_fd = self._step_into(user_path, dir_fd, part)
            try:
                return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError as exc:
                self._refuse_open_error(user_path, exc)
        finally:
            os.close(dir_fd)

    @staticmethod
    def _refuse_open_error(user_path: str, exc: OSError) -> NoReturn:
        if exc.errno == errno.ELOOP:
            # A symlink was swapped in between the check and the open; O_NOFOLLOW caught it.
            _refuse(SandboxReason.SYMLINK_ESCAPE, user_path, "the path changed while opening")
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise NotFound(f"no file {user_path!r} in the workspace") from exc
        raise exc
