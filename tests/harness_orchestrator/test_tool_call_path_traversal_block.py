"""Tool arguments carrying path traversal never reach a file outside the workspace.

Test plan: harness_orchestrator/test_tool_call_path_traversal_block.py. Failure
manifestation: unauthorized file access allowed. Fixtures: malicious tool-arg payloads,
a canary file outside the workspace, real symlinks/FIFOs/sockets, and a filesystem spy
(an audit hook plus wrapped ``os`` calls) proving string-level refusals touch nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError, HarnessError, InvalidRequest, NotFound, SandboxViolation
from harness.tools.sandbox import SandboxReason, Workspace

pytestmark = [pytest.mark.tier0, pytest.mark.security]

CANARY_TEXT = "CANARY-7f3a: this file lives outside the workspace"
DECOY_TEXT = "DECOY-91c2: outside copy of docs/readme.md"
README_TEXT = "# readme inside the workspace\n"

# --- filesystem spy -----------------------------------------------------------------

_FS_AUDIT_EVENTS = frozenset(
    {
        "open",
        "os.listdir",
        "os.scandir",
        "os.mkdir",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.truncate",
        "os.link",
        "os.symlink",
        "os.chmod",
        "os.utime",
    }
)
_recording: list[tuple[str, object]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording is not None and event in _FS_AUDIT_EVENTS:
        _recording.append((event, args[0] if args else None))


# Audit hooks cannot be removed; this one records only inside `filesystem_spy()`.
sys.addaudithook(_audit)


@contextlib.contextmanager
def filesystem_spy() -> Iterator[list[tuple[str, object]]]:
    """Record every open/dir/mutation audit event and every stat/lstat/readlink/realpath."""
    global _recording
    events: list[tuple[str, object]] = []

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            events.append((name, args[0] if args else None))
            return original(*args, **kwargs)

        return spy

    patched = {name: getattr(os, name) for name in ("stat", "lstat", "readlink")}
    original_realpath = os.path.realpath
    for name, original in patched.items():
        setattr(os, name, wrap(f"os.{name}", original))
    os.path.realpath = wrap("os.path.realpath", original_realpath)
    _recording = events
    try:
        yield events
    finally:
        _recording = None
        os.path.realpath = original_realpath
        for name, original in patched.items():
            setattr(os, name, original)


def opens_of(events: list[tuple[str, object]]) -> list[object]:
    return [target for event, target in events if event == "open"]


# --- workspace layout ---------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    base: Path
    root: Path
    outside: Path
    canary: Path

    def fingerprint(self) -> dict[str, tuple[bytes, int, int]]:
        """Content, inode and mtime of every file outside the workspace."""
        found = {}
        for path in sorted(self.outside.rglob("*")):
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                found[str(path)] = (path.read_bytes(), info.st_ino, info.st_mtime_ns)
        return found


def build_layout(base: Path) -> Layout:
    outside = base / "outside"
    (outside / "docs").mkdir(parents=True)
    canary = outside / "canary.txt"
    canary.write_text(CANARY_TEXT)
    (outside / "docs" / "readme.md").write_text(DECOY_TEXT)
    (outside / "readme.md").write_text(DECOY_TEXT)

    root = base / "ws"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "readme.md").write_text(README_TEXT)
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("VALUE = 1\n")
    (root / "café").mkdir()
    (root / "café" / "naïve notes.txt").write_text("unicode names are fine\n")
    (root / "..config").write_text("dots inside a name are fine\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[remote] url = https://token@example.invalid\n")
    # Symlinks that leave the workspace, by every route.
    (root / "escape_file").symlink_to(canary)
    (root / "escape_dir").symlink_to(outside, target_is_directory=True)
    (root / "escape_relative").symlink_to(Path("..") / "outside" / "canary.txt")
    (root / "docs" / "nested_escape").symlink_to(Path("..") / ".." / "outside")
    (root / "via_base").symlink_to(base, target_is_directory=True)
    (root / "dangling_out").symlink_to(base / "nowhere" / "x")
    (root / "to_dev_zero").symlink_to("/dev/zero")
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    # Symlinks that stay inside: readable, never writable.
    (root / "inside_link").symlink_to(Path("docs") / "readme.md")
    (root / "inside_dir_link").symlink_to(root / "src", target_is_directory=True)
    os.mkfifo(root / "pipe")
    (root / "pipe_link").symlink_to(root / "pipe")
    return Layout(base=base, root=root, outside=outside, canary=canary)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return build_layout(tmp_path)


@pytest.fixture
def workspace(layout: Layout) -> Workspace:
    return Workspace(layout.root)


# --- string-level refusals: nothing on disk is touched --------------------------------

R = SandboxReason
MALICIOUS_PAYLOADS: list[tuple[str, SandboxReason]] = [
    # plain traversal
    ("../outside/canary.txt", R.TRAVERSAL),
    ("a/../../outside/canary.txt", R.TRAVERSAL),
    ("docs/../../outside/canary.txt", R.TRAVERSAL),
    ("docs/../readme.md", R.TRAVERSAL),
    ("..", R.TRAVERSAL),
    ("../", R.TRAVERSAL),
    ("...", R.TRAVERSAL),
    ("docs/....//canary.txt", R.TRAVERSAL),
    # absolute, home, drive, UNC, URL
    ("/etc/passwd", R.ABSOLUTE),
    ("//etc/passwd", R.ABSOLUTE),
    ("/dev/zero", R.ABSOLUTE),
    ("~/.ssh/id_rsa", R.ABSOLUTE),
    ("~root/.bashrc", R.ABSOLUTE),
    ("C:\\Windows\\win.ini", R.ABSOLUTE),
    ("c:/windows/win.ini", R.ABSOLUTE),
    ("C:x", R.ABSOLUTE),
    ("\\\\server\\share\\secret", R.ABSOLUTE),
    ("\\windows\\win.ini", R.ABSOLUTE),
    ("file:///etc/passwd", R.ABSOLUTE),
    # backslash separators
    ("..\\outside\\canary.txt", R.BACKSLASH),
    ("docs\\..\\..\\outside", R.BACKSLASH),
    ("docs\\readme.md", R.BACKSLASH),
    # NUL byte
    ("docs/readme.md\x00.txt", R.NUL_BYTE),
    ("\x00", R.NUL_BYTE),
    ("../outside/canary.txt\x00", R.NUL_BYTE),
    # URL, double and overlong encodings
    ("%2e%2e%2foutside%2fcanary.txt", R.ENCODED),
    ("%2E%2E/outside/canary.txt", R.ENCODED),
    ("..%2foutside%2fcanary.txt", R.ENCODED),
    ("%252e%252e%252foutside", R.ENCODED),
    ("%c0%ae%c0%ae/outside", R.ENCODED),
    ("..%c0%afoutside", R.ENCODED),
    ("%u002e%u002e/outside", R.ENCODED),
    ("\udcc0\udcae\udcc0\udcae/outside", R.ENCODED),  # overlong '.' via surrogateescape
    # Unicode look-alikes of '.', '/', '\\'
    ("．．／outside／canary.txt", R.ENCODED),
    ("..∕outside∕canary.txt", R.ENCODED),
    ("..⁄outside", R.ENCODED),
    ("‥/outside", R.ENCODED),
    ("..＼outside", R.ENCODED),
    ("。。/outside", R.ENCODED),
    ("﹒﹒/outside", R.ENCODED),
    # control and invisible characters
    ("docs/\u202edm.emdaer", R.HIDDEN_CONTROL_CHARS),
    ("docs/readme.md\n", R.HIDDEN_CONTROL_CHARS),
    ("docs\t/readme.md", R.HIDDEN_CONTROL_CHARS),
    ("\x1b[2Jdocs", R.HIDDEN_CONTROL_CHARS),
    ("docs/read\u200bme.md", R.HIDDEN_CONTROL_CHARS),
    ("\ufeffdocs/readme.md", R.HIDDEN_CONTROL_CHARS),
    ("docs\u2028readme.md", R.HIDDEN_CONTROL_CHARS),
    ("docs/readme\u00a0.md", R.HIDDEN_CONTROL_CHARS),
    ("docs/\x7f", R.HIDDEN_CONTROL_CHARS),
    # empty
    ("", R.EMPTY),
    (".", R.EMPTY),
    ("./", R.EMPTY),
    ("././.", R.EMPTY),
    # too long
    ("a" * 1025, R.TOO_LONG),
    ("a/" * 600, R.TOO_LONG),
    ("é" * 600, R.TOO_LONG),
    ("docs/" + "x" * 256, R.TOO_LONG),
    # reserved names
    ("CON", R.RESERVED_NAME),
    ("aux.txt", R.RESERVED_NAME),
    ("docs/lpt1.log", R.RESERVED_NAME),
    ("com¹", R.RESERVED_NAME),
    ("docs/readme.md.", R.RESERVED_NAME),
    ("docs/readme.md ", R.RESERVED_NAME),
    (".git/config", R.RESERVED_NAME),
    (".GIT/hooks/pre-commit", R.RESERVED_NAME),
]


def _call(workspace: Workspace, operation: str, payload: object) -> object:
    if operation == "resolve":
        return workspace.resolve(payload)  # type: ignore[arg-type]
    if operation == "resolve_for_write":
        return workspace.resolve(payload, for_write=True)  # type: ignore[arg-type]
    if operation == "read_text":
        return workspace.read_text(payload)  # type: ignore[arg-type]
    return workspace.path_for_write(payload)  # type: ignore[arg-type]


OPERATIONS = ["resolve", "resolve_for_write", "read_text", "path_for_write"]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(
    ("payload", "reason"),
    MALICIOUS_PAYLOADS,
    ids=[ascii(payload)[:40] for payload, _ in MALICIOUS_PAYLOADS],
)
def test_malicious_payload_refused_before_touching_disk(
    layout: Layout, workspace: Workspace, operation: str, payload: str, reason: SandboxReason
) -> None:
    before = layout.fingerprint()

    with filesystem_spy() as events, pytest.raises(SandboxViolation) as caught:
        _call(workspace, operation, payload)

    assert caught.value.details["reason"] == reason
    assert caught.value.code == "sandbox-violation"
    assert events == [], "a string-level refusal must not stat, open or create anything"
    assert layout.fingerprint() == before
    assert CANARY_TEXT not in str(caught.value)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_absolute_path_to_the_canary_is_refused(
    layout: Layout, workspace: Workspace, operation: str
) -> None:
    with filesystem_spy() as events, pytest.raises(SandboxViolation) as caught:
        _call(workspace, operation, str(layout.canary))

    assert caught.value.details["reason"] == R.ABSOLUTE
    assert events == []


@pytest.mark.parametrize("payload", [None, 42, b"docs/readme.md", ["docs"]])
def test_non_string_payload_refused(workspace: Workspace, payload: object) -> None:
    with filesystem_spy() as events, pytest.raises(SandboxViolation) as caught:
        workspace.resolve(payload)  # type: ignore[arg-type]

    assert caught.value.details["reason"] == R.EMPTY
    assert events == []


# --- symlinks, loops, devices ---------------------------------------------------------

SYMLINK_ESCAPES = [
    "escape_file",
    "escape_dir/canary.txt",
    "escape_dir",
    "escape_relative",
    "docs/nested_escape/canary.txt",
    "via_base/outside/canary.txt",
    # leaves the workspace and comes back in: still refused
    "via_base/ws/docs/readme.md",
    "dangling_out",
    "to_dev_zero",
    "loop_a",
    "loop_b/anything",
]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("payload", SYMLINK_ESCAPES)
def test_symlink_out_of_workspace_refused(
    layout: Layout, workspace: Workspace, operation: str, payload: str
) -> None:
    before = layout.fingerprint()

    with filesystem_spy() as events, pytest.raises(SandboxViolation) as caught:
        _call(workspace, operation, payload)

    assert caught.value.details["reason"] == R.SYMLINK_ESCAPE
    assert opens_of(events) == [], "nothing may be opened once a symlink escape is seen"
    assert not [e for e in events if e[0] in {"os.mkdir", "os.scandir", "os.listdir"}]
    assert layout.fingerprint() == before


@pytest.mark.parametrize(
    "payload", ["inside_link", "inside_dir_link/pkg/mod.py", "inside_dir_link/new.txt"]
)
def test_writes_never_go_through_a_symlink_even_inside(
    layout: Layout, workspace: Workspace, payload: str
) -> None:
    with pytest.raises(SandboxViolation) as caught:
        workspace.path_for_write(payload)

    assert caught.value.details["reason"] == R.SYMLINK_ESCAPE
    assert not (layout.root / "src" / "new.txt").exists()


def test_write_into_escaping_dir_creates_nothing_outside(layout: Layout) -> None:
    workspace = Workspace(layout.root)
    before = sorted(p.name for p in layout.outside.iterdir())

    with pytest.raises(SandboxViolation):
        workspace.path_for_write("escape_dir/new/planted.txt")

    assert sorted(p.name for p in layout.outside.iterdir()) == before


def test_write_to_hard_link_of_outside_file_refused(layout: Layout) -> None:
    os.link(layout.canary, layout.root / "hard")
    workspace = Workspace(layout.root)

    with pytest.raises(SandboxViolation) as caught:
        workspace.path_for_write("hard")

    assert caught.value.details["reason"] == R.SYMLINK_ESCAPE
    assert layout.canary.read_text() == CANARY_TEXT


@pytest.mark.parametrize(
    ("payload", "operation"),
    [
        ("pipe", "resolve"),
        ("pipe", "read_text"),
        ("pipe", "path_for_write"),
        ("pipe_link", "resolve"),
        ("pipe_link", "read_text"),
    ],
)
@pytest.mark.timeout(10)
def test_fifo_in_workspace_refused(workspace: Workspace, payload: str, operation: str) -> None:
    with filesystem_spy() as events, pytest.raises(SandboxViolation) as caught:
        _call(workspace, operation, payload)

    assert caught.value.details["reason"] == R.DEVICE
    assert opens_of(events) == [], "opening a FIFO blocks or consumes another writer's data"


def test_unix_socket_in_workspace_refused(
    layout: Layout, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(layout.root)  # a short relative name stays under the AF_UNIX limit
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind("sock")

        with pytest.raises(SandboxViolation) as caught:
            workspace.read_text("sock")

    assert caught.value.details["reason"] == R.DEVICE


def test_device_node_in_workspace_refused(layout: Layout, workspace: Workspace) -> None:
    try:
        os.mknod(layout.root / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")

    with filesystem_spy() as events, pytest.raises(SandboxViolation) as caught:
        workspace.read_text("zero")

    assert caught.value.details["reason"] == R.DEVICE
    assert opens_of(events) == []


def test_symlink_swapped_in_after_the_check_is_not_followed(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TOCTOU: the directory is replaced by a symlink between resolve() and the open."""
    workspace = Workspace(layout.root)
    original_resolve = Workspace.resolve

    def resolve_then_swap(self: Workspace, user_path: str, *, for_write: bool = False) -> Path:
        resolved = original_resolve(self, user_path, for_write=for_write)
        (layout.root / "docs").rename(layout.root / "docs_moved")
        (layout.root / "docs").symlink_to(layout.outside / "docs", target_is_directory=True)
        return resolved

    monkeypatch.setattr(Workspace, "resolve", resolve_then_swap)

    with pytest.raises(SandboxViolation) as caught:
        workspace.read_text("docs/readme.md")

    assert caught.value.details["reason"] == R.SYMLINK_ESCAPE


def test_file_swapped_for_symlink_after_the_check_is_not_followed(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = Workspace(layout.root)
    original_resolve = Workspace.resolve

    def resolve_then_swap(self: Workspace, user_path: str, *, for_write: bool = False) -> Path:
        resolved = original_resolve(self, user_path, for_write=for_write)
        target = layout.root / "docs" / "readme.md"
        target.unlink()
        target.symlink_to(layout.canary)
        return resolved

    monkeypatch.setattr(Workspace, "resolve", resolve_then_swap)

    with pytest.raises(SandboxViolation) as caught:
        workspace.read_text("docs/readme.md")

    assert caught.value.details["reason"] == R.SYMLINK_ESCAPE


# --- legitimate use -----------------------------------------------------------------

LEGITIMATE = [
    ("docs/readme.md", "docs/readme.md", README_TEXT),
    ("./docs/readme.md", "docs/readme.md", README_TEXT),
    ("docs//readme.md", "docs/readme.md", README_TEXT),
    ("docs/readme.md/", "docs/readme.md", README_TEXT),
    ("src/pkg/mod.py", "src/pkg/mod.py", "VALUE = 1\n"),
    ("inside_link", "docs/readme.md", README_TEXT),
    ("inside_dir_link/pkg/mod.py", "src/pkg/mod.py", "VALUE = 1\n"),
    ("café/naïve notes.txt", "café/naïve notes.txt", "unicode names are fine\n"),
    ("..config", "..config", "dots inside a name are fine\n"),
]


@pytest.mark.parametrize(("payload", "real", "content"), LEGITIMATE)
def test_legitimate_paths_resolve_inside_and_read(
    layout: Layout, workspace: Workspace, payload: str, real: str, content: str
) -> None:
    resolved = workspace.resolve(payload)

    assert resolved == layout.root.resolve() / real
    assert workspace.read_text(payload) == content


def test_missing_file_is_not_found_inside_the_workspace(workspace: Workspace) -> None:
    assert workspace.resolve("docs/new.md") == workspace.root / "docs" / "new.md"
    with pytest.raises(NotFound):
        workspace.read_text("docs/new.md")
    with pytest.raises(NotFound):
        workspace.read_text("docs/readme.md/child")


def test_directory_is_not_readable_as_text(workspace: Workspace) -> None:
    with pytest.raises(InvalidRequest):
        workspace.read_text("docs")
    with pytest.raises(InvalidRequest):
        workspace.path_for_write("docs")


def test_read_text_caps_bytes_and_replaces_bad_utf8(layout: Layout, workspace: Workspace) -> None:
    (layout.root / "big.bin").write_bytes(b"\xff" + b"x" * 100)

    assert workspace.read_text("big.bin", max_bytes=4) == "\ufffdxxx"
    with pytest.raises(ValueError, match="max_bytes"):
        workspace.read_text("big.bin", max_bytes=0)


def test_path_for_write_creates_parents_inside_only(layout: Layout, workspace: Workspace) -> None:
    before = layout.fingerprint()

    target = workspace.path_for_write("reports/2024/summary.md")
    target.write_text("ok")

    assert target == layout.root.resolve() / "reports" / "2024" / "summary.md"
    assert workspace.read_text("reports/2024/summary.md") == "ok"
    assert layout.fingerprint() == before
    assert workspace.path_for_write("docs/readme.md") == layout.root.resolve() / "docs/readme.md"


def test_list_files_is_sorted_and_never_leaves_the_workspace(
    layout: Layout, workspace: Workspace
) -> None:
    with filesystem_spy() as events:
        listed = workspace.list_files()

    assert listed == [
        "..config",
        "café/naïve notes.txt",
        "docs/readme.md",
        "inside_link",
        "src/pkg/mod.py",
    ]
    scanned = [Path(str(t)).resolve() for e, t in events if e in {"os.scandir", "os.listdir"}]
    assert all(path.is_relative_to(layout.root.resolve()) for path in scanned)
    assert not any(path.is_relative_to(layout.root / ".git") for path in scanned)
    assert opens_of(events) == []
    for relative in listed:
        workspace.read_text(relative)  # every listed path is accepted by the sandbox


def test_list_files_of_subdirectory(workspace: Workspace) -> None:
    assert workspace.list_files("src") == ["src/pkg/mod.py"]
    assert workspace.list_files("inside_dir_link") == ["src/pkg/mod.py"]
    with pytest.raises(SandboxViolation):
        workspace.list_files("escape_dir")
    with pytest.raises(SandboxViolation):
        workspace.list_files("..")
    with pytest.raises(NotFound):
        workspace.list_files("nope")


def test_workspace_root_must_be_an_existing_directory(layout: Layout) -> None:
    with pytest.raises(ConfigError):
        Workspace(layout.base / "missing")
    with pytest.raises(ConfigError):
        Workspace(layout.canary)


def test_workspace_root_given_through_a_symlink_is_stored_real(layout: Layout) -> None:
    (layout.base / "ws_link").symlink_to(layout.root, target_is_directory=True)

    workspace = Workspace(layout.base / "ws_link")

    assert workspace.root == layout.root.resolve()
    assert workspace.read_text("docs/readme.md") == README_TEXT


# --- properties -----------------------------------------------------------------------

FRAGMENTS = [
    "..",
    ".",
    "/",
    "\\",
    "docs",
    "readme.md",
    "outside",
    "canary.txt",
    "ws",
    "escape_dir",
    "escape_file",
    "via_base",
    "inside_link",
    "inside_dir_link",
    "loop_a",
    "pipe",
    "%2e",
    "%2f",
    "~",
    "C:",
    "\x00",
    "．",
    "／",
    "∕",
    "\u202e",
    "\udcae",
    " ",
]
paths = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), max_size=6).map("/".join),
    st.text(max_size=40),
)
STRING_LEVEL_REASONS = set(SandboxReason) - {R.SYMLINK_ESCAPE, R.DEVICE}


@pytest.fixture(scope="module")
def shared_layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return build_layout(tmp_path_factory.mktemp("property"))


@settings(
    max_examples=400,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(user_path=paths)
def test_resolve_refuses_or_stays_inside(shared_layout: Layout, user_path: str) -> None:
    workspace = Workspace(shared_layout.root)

    with filesystem_spy() as events:
        try:
            resolved = workspace.resolve(user_path)
        except SandboxViolation as violation:
            resolved = None
            reason = violation.details["reason"]

    if resolved is None:
        if reason in STRING_LEVEL_REASONS:
            assert events == []
        return
    real = Path(os.path.realpath(resolved))
    assert real.is_relative_to(workspace.root)
    assert resolved.is_relative_to(workspace.root)
    assert opens_of(events) == []


@settings(
    max_examples=300,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(user_path=paths)
def test_read_text_never_returns_outside_content(shared_layout: Layout, user_path: str) -> None:
    workspace = Workspace(shared_layout.root)

    try:
        text = workspace.read_text(user_path)
    except (SandboxViolation, NotFound, InvalidRequest):
        return
    except HarnessError as unexpected:  # pragma: no cover - reported by the assert
        pytest.fail(f"unexpected harness error {unexpected!r}")

    assert CANARY_TEXT not in text
    assert DECOY_TEXT not in text
