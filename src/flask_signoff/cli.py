"""``flask signoff ...``: maintenance commands for the session store.

Registered through the ``flask.commands`` entry point, so every app that has
Flask-Signoff set up gets them; the ``flask`` command itself needs this module
to exist, whatever app it runs.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .extension import get_state

signoff_cli = AppGroup("signoff", help="Flask-Signoff's session store.")


@signoff_cli.command("purge")
@click.option(
    "--batch-size", default=500, show_default=True, help="Rows per transaction."
)
def purge(batch_size: int) -> None:
    """Drop expired sessions and tokens, in short batches."""
    state = get_state()
    total = 0
    while True:
        count = state.store.purge_expired(state.clock(), batch_size=batch_size)
        total += count
        if count == 0:
            break
    click.echo(f"Dropped {total} expired records.")
