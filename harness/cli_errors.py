"""One line for every error a CLI user can cause: settings, database URLs, files; never a traceback.

Both command-line tools (``harness`` and ``harness-replay``) route exceptions through
``explain``. Known causes get a sentence that says what to do next; anything else gets one
line naming the exception, and ``HARNESS_TRACEBACK=1`` shows the full traceback for a bug
report.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

TRACEBACK_ENV = "HARNESS_TRACEBACK"


class OneLineErrorGroup(click.Group):
    """A click group whose every error ends as one line on stderr and exit 2, never a traceback.

    Usage errors (a bad value, an unknown option) drop click's usage block for a pointer to
    ``--help``; deliberate errors print their message; anything else goes through ``explain``.
    """

    group_class = type  # subgroups (`harness db`, `harness audit`) behave the same

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list with each first sentence whole (wrapped, never cut with "...")."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def deliberate_message(self, exc: Exception) -> str | None:
        """The message of an error the package raises on purpose (override to add more types)."""
        from harness.errors import HarnessError

        return exc.message if isinstance(exc, HarnessError) else None

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            _usage_exit(exc, info_name or self.name or "")

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            _usage_exit(exc, ctx.command_path)
        except (click.exceptions.Exit, click.Abort, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as exc:
            message = self.deliberate_message(exc)
            if message is None:
                if want_traceback():
                    raise
                message = explain(exc)
            click.echo(f"error: {_one_line(message)}", err=True)
            sys.exit(2)


def _usage_exit(exc: click.UsageError, fallback_path: str) -> NoReturn:
    # One line, like every other error here; click's default adds a four-line usage block.
    path = exc.ctx.command_path if exc.ctx is not None else fallback_path
    click.echo(f"error: {_one_line(exc.format_message())} (see `{path} --help`)", err=True)
    sys.exit(2)


def want_traceback() -> bool:
    """True when the user asked for full tracebacks (``HARNESS_TRACEBACK=1``)."""
    return os.environ.get(TRACEBACK_ENV, "") not in {"", "0", "false"}


def explain(exc: BaseException) -> str:
    """One line (no newlines) that says what went wrong and what to do next."""
    for explainer in (_settings_error, _database_error, _os_error):
        message = explainer(exc)
        if message is not None:
            return _one_line(message)
    return _one_line(
        f"unexpected {type(exc).__name__}: {exc} (set {TRACEBACK_ENV}=1 for the traceback and report it)"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _settings_error(exc: BaseException) -> str | None:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    if isinstance(exc, SettingsError):
        # pydantic-settings says: error parsing value for field "x" from source "EnvSettingsSource"
        field = str(exc).split('"')[1] if '"' in str(exc) else "?"
        return f"HARNESS_{field.upper()} is not valid JSON; fix it or unset it"
    if not isinstance(exc, ValidationError) or exc.title not in {"Settings", "_HermeticSettings"}:
        return None
    problems = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        msg = str(error["msg"]).removeprefix("Value error, ")
        if loc:
            field = loc.split(".")[0]
            # Never echo what may be a secret back to a terminal or a CI log.
            hidden = any(word in field for word in ("secret", "key", "password", "token"))
            shown = "" if hidden else "=" + _short(error.get("input"))
            problems.append(f"HARNESS_{field.upper()}{shown}: {msg}")
        else:
            problems.append(msg)
    return "bad settings: " + "; ".join(problems) + " (fix or unset the variable)"


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _database_error(exc: BaseException) -> str | None:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.ArgumentError) and "URL" in str(exc):
        return (
            "HARNESS_DATABASE_URL is not a database URL; use e.g. sqlite:///path/harness.db or "
            "postgresql://user@host:5432/db"
        )
    if isinstance(exc, sa_exc.NoSuchModuleError) or (
        isinstance(exc, ModuleNotFoundError) and _looks_like_db_driver(exc)
    ):
        return (
            "HARNESS_DATABASE_URL names a database driver this install does not have; "
            "supported: sqlite:///... and postgresql://... (psycopg 3)"
        )
    if isinstance(exc, sa_exc.DBAPIError | sa_exc.OperationalError):
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()
        first = detail[0] if detail else type(exc).__name__
        lowered = str(exc).lower()
        if (
            "no such table" in lowered
            or "undefinedtable" in lowered
            or ("relation" in lowered and "does not exist" in lowered)
        ):
            return "the database has no schema (or an old one); run `harness db upgrade`"
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return f"cannot use the database (check HARNESS_DATABASE_URL): {first}"
        return f"database error: {first}"
    return None


def _looks_like_db_driver(exc: ModuleNotFoundError) -> bool:
    return (exc.name or "").lower() in {
        "mysqldb", "pymysql", "psycopg2", "asyncpg", "cx_oracle", "oracledb", "pyodbc", "pymssql",
    }  # fmt: skip


def _os_error(exc: BaseException) -> str | None:
    if not isinstance(exc, OSError) or exc.strerror is None:
        return None
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror}{where}"
