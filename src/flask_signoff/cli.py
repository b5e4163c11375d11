"""``flask signoff ...``: administer sessions from the command line.

Output never contains a secret: sessions are shown by their public id, and
store URLs without their password.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
import time
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from .exceptions import ConfigError, StoreUnavailable
from .state import get_state
from .stores import redact_url

signoff_cli = AppGroup("signoff", help="Sessions and tokens of Flask-Signoff.")


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value == int(value) else f"{value:g} s"


def _when(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return moment.isoformat(timespec="seconds")


#: Seconds between two progress lines on stderr when it is not a terminal
#: (a log file, a cron mail); on a terminal one line is rewritten in place,
#: at most every :data:`PROGRESS_REDRAW` seconds.
PROGRESS_EVERY = 10.0
PROGRESS_REDRAW = 0.2


class Progress:
    """The progress of a long command, on stderr, so stdout keeps only the
    summary (for scripts that read it)."""

    def __init__(self) -> None:
        self.started = self._last = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._drawn = False

    @property
    def elapsed(self) -> float:
        """Seconds since the command started."""
        return time.monotonic() - self.started

    def update(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` if the last line is old enough (or ``force``)."""
        now = time.monotonic()
        every = PROGRESS_REDRAW if self._tty else PROGRESS_EVERY
        if not force and now - self._last < every:
            return
        self._last = now
        if self._tty:
            # Pad: the new line may be shorter than the one it covers.
            click.echo(f"\r{text:<72}", err=True, nl=False)
            self._drawn = True
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        """End the line rewritten in place, if any."""
        if self._drawn:
            click.echo(err=True)
            self._drawn = False


@signoff_cli.command("sessions")
@click.argument("user_id")
def list_sessions(user_id: str) -> None:
    """List the live sessions of USER_ID (public ids only)."""
    records = get_state().lifecycle.sessions_for(user_id)
    if not records:
        click.echo(f"No live sessions for {user_id!r}.")
        return
    for r in records:
        click.echo(
            "\t".join(
                [
                    r.public_id,
                    f"created {_when(r.created_at)}",
                    f"last seen {_when(r.last_seen_at)}",
                    f"ip {r.ip or '-'}",
                    "remembered" if r.remember else "browser session",
                    (r.user_agent or "-")[:80],
                ]
            )
        )
    click.echo(f"{len(records)} live session(s).")


@signoff_cli.command("revoke-user")
@click.argument("user_id")
def revoke_user(user_id: str) -> None:
    """Sign USER_ID out everywhere: every session, refresh token and access token."""
    count = get_state().lifecycle.revoke_user(user_id)
    click.echo(f"Signed {user_id!r} out everywhere ({count} session(s) ended).")


@signoff_cli.command("revoke-all")
@click.confirmation_option(prompt="Sign every user out of every session and token?")
def revoke_all() -> None:
    """Sign every user out of everything (asks for confirmation; --yes skips)."""
    state = get_state()
    progress = Progress()
    done = {"families": 0, "sessions": 0}

    def step(name: str, count: int) -> None:
        done[name] = count
        progress.update(
            f"{count} refresh family(ies) revoked; ending every session..."
            if name == "families"
            else f"{count} session(s) ended",
            force=True,
        )

    progress.update("Revoking every refresh family...", force=True)
    try:
        state.lifecycle.revoke_everyone(state.settings.access_token_ttl, on_step=step)
    finally:
        progress.close()
    click.echo(
        f"Signed everyone out ({done['sessions']} session(s) ended). "
        f"{done['families']} refresh family(ies) revoked, in "
        f"{progress.elapsed:.1f} s."
    )


@signoff_cli.command("purge")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1))
def purge(batch_size: int) -> None:
    """Delete expired sessions and tokens now, in small batches.

    Progress goes to stderr while it runs (a line every few seconds when
    stderr is not a terminal); the summary to stdout.
    """
    state = get_state()
    progress = Progress()
    total = batches = 0
    try:
        while True:
            deleted = state.store.purge_expired(state.clock(), batch_size=batch_size)
            batches += 1
            total += deleted
            if deleted == 0:
                break
            rate = total / max(progress.elapsed, 1e-9)
            progress.update(
                f"purge: {total:,} record(s) deleted in {batches:,} batch(es), "
                f"{progress.elapsed:.1f} s ({rate:,.0f}/s)"
            )
    finally:
        progress.close()
    click.echo(
        f"Purged {total} expired record(s). {batches} batch(es) in "
        f"{progress.elapsed:.1f} s."
    )


@signoff_cli.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def stats(as_json: bool) -> None:
    """Count the live sessions (remembered, anonymous) and refresh families.

    Read-only, but it walks the whole store: a count over an index on SQL,
    a SCAN of every key (on every master of a cluster) on Redis, O(n).
    """
    state = get_state()
    started = time.monotonic()
    try:
        counts = state.store.stats(state.clock())
    except StoreUnavailable as e:
        raise click.ClickException(f"{e}. Nothing was counted.") from None
    elapsed = time.monotonic() - started
    url = redact_url(state.settings.store_url)
    if as_json:
        fields = dataclasses.asdict(counts)
        click.echo(json.dumps({"store": url, **fields, "seconds": elapsed}))
        return
    click.echo(f"store: {url} ({type(state.store).__name__})")
    click.echo(f"live sessions: {counts.sessions}")
    click.echo(f"  remembered: {counts.remembered}")
    click.echo(f"  anonymous: {counts.anonymous}")
    click.echo(f"live refresh families: {counts.families}")
    click.echo(f"Counted in {elapsed:.2f} s.")


@signoff_cli.command("init")
def init() -> None:
    """Create the store's tables (SQL) if they are missing."""
    store = get_state().store
    create = getattr(store, "create_schema", None)
    if create is not None:
        create()
    click.echo("The store is ready.")


@signoff_cli.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the configuration and the store before serving.

    Reports the settings in use; whether the store is reachable; on Redis,
    the maxmemory-policy of the server or of every cluster master (anything
    but noeviction may evict revocation records and is refused unless
    SIGNOFF_REDIS_ALLOW_EVICTION is on); on SQL, whether the schema is
    present. The exit status is 0 when all is well, 1 otherwise, with what
    to do.
    """
    state = get_state()
    settings = state.settings
    store = state.store
    problems: list[str] = []
    warnings: list[str] = []
    redis_like = hasattr(store, "eviction_policies")
    sql_like = hasattr(store, "missing_tables")

    click.echo("configuration: valid")
    click.echo(f"  store: {redact_url(settings.store_url)} ({type(store).__name__})")
    if redis_like:
        click.echo(f"  key prefix: {settings.store_options.get('key_prefix')!r}")
        allowed = getattr(store, "allow_eviction", False)
        click.echo(f"  SIGNOFF_REDIS_ALLOW_EVICTION: {'on' if allowed else 'off'}")
    elif sql_like:
        click.echo(f"  table prefix: {settings.store_options.get('table_prefix')!r}")
    click.echo(
        f"  timeouts: idle {_seconds(settings.idle_timeout)}, absolute "
        f"{_seconds(settings.absolute_timeout)}, remember "
        f"{_seconds(settings.remember_duration)}"
    )
    click.echo(
        f"  tokens: access {_seconds(settings.access_token_ttl)}, issuer "
        f"{settings.jwt_issuer!r}, audience {settings.jwt_audience!r}"
    )
    click.echo(f"  secure cookie: {'on' if settings.cookie_secure else 'off'}")
    if not settings.cookie_secure:
        warnings.append(
            "SIGNOFF_COOKIE_SECURE is off: the session cookie travels over "
            "plain http. Turn it on outside local development."
        )
    unnamed = settings.jwt_names_defaulted
    if unnamed:
        warnings.append(
            f"{' and '.join(unnamed)} default to the import name "
            f"{current_app.import_name!r}: another app of that name sharing a "
            "signing key would accept this app's tokens. Set them to names of "
            "this deployment."
        )

    try:
        if redis_like:
            policies = t.cast(t.Any, store).eviction_policies()
            click.echo("store: reachable")
            for p in policies:
                shown = p.policy if p.policy is not None else f"unreadable ({p.error})"
                click.echo(f"  {p.node}: maxmemory-policy {shown}")
        elif sql_like:
            missing = t.cast(t.Any, store).missing_tables()
            click.echo("store: reachable")
            if missing:
                click.echo(f"schema: missing {', '.join(missing)}")
                problems.append(
                    f"The schema is missing ({len(missing)} table(s)): run "
                    "`flask signoff init` to create it (or let the first "
                    "request create it, if the database user may)."
                )
            else:
                click.echo("schema: present")
        warnings += store.check_config()
        if not (redis_like or sql_like):
            click.echo("store: reachable")
    except StoreUnavailable as e:
        click.echo("store: not reachable")
        problems.append(
            f"{e}. Start the store or fix SIGNOFF_STORE_URL (and the network "
            f"between them); calls give up after SIGNOFF_STORE_TIMEOUT = "
            f"{settings.store_options.get('timeout')!r} s. Until it answers, "
            "the app answers 503."
        )
    except ConfigError as e:
        problems.append(str(e))

    for warning in warnings:
        click.echo(f"warning: {warning}")
    for problem in problems:
        click.echo(f"error: {problem}")
    if problems:
        click.echo(f"FAILED: {len(problems)} problem(s) to fix, listed above.")
        ctx.exit(1)
    note = f", {len(warnings)} warning(s) above" if warnings else ""
    click.echo(f"OK: the store is reachable and configured as it must be{note}.")
