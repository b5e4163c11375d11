"""``flask signoff ...``: administer sessions from the command line.

Output never contains a secret: sessions are shown by their public id.
"""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from .extension import get_state

signoff_cli = AppGroup("signoff", help="Sessions and tokens of Flask-Signoff.")


def _when(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return moment.isoformat(timespec="seconds")


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
    count = state.lifecycle.revoke_everyone(state.settings.access_token_ttl)
    click.echo(f"Signed everyone out ({count} session(s) ended).")


@signoff_cli.command("purge")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1))
def purge(batch_size: int) -> None:
    """Delete expired sessions and tokens now, in small batches."""
    state = get_state()
    total = 0
    while True:
        deleted = state.store.purge_expired(state.clock(), batch_size=batch_size)
        total += deleted
        if deleted == 0:
            break
    click.echo(f"Purged {total} expired record(s).")


@signoff_cli.command("init")
def init() -> None:
    """Create the store's tables (SQL) if they are missing."""
    store = get_state().store
    create = getattr(store, "create_schema", None)
    if create is not None:
        create()
    click.echo("The store is ready.")
