"""``serve``: the web inspector on a local port (see ``lance_context._inspector``)."""

from __future__ import annotations

import ipaddress

import click

from ._common import spec_from, store_arguments, whole_number

__all__ = ["COMMANDS"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@store_arguments()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback lets other machines read the store.",
)
@click.option("--port", default=8765, show_default=True, type=whole_number(0, 65535), metavar="N")
@click.option(
    "--page-size",
    default=25,
    show_default=True,
    type=whole_number(5, 500),
    metavar="N",
    help="Versions and sessions per page.",
)
@click.option(
    "--allow-writes", is_flag=True, help="Show tag, branch and restore buttons (POST, CSRF-checked)."
)
def serve(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    host: str,
    port: int,
    page_size: int,
    allow_writes: bool,
) -> None:
    """Browse the store in a web browser: timeline, sessions, conversations, diffs, search, threads.

    Read-only unless --allow-writes. Stop it with Ctrl+C.
    """
    try:
        import uvicorn

        from lance_context._inspector import InspectorConfig, create_app
    except ImportError as exc:
        raise click.ClickException(
            f"the inspector needs {exc.name or 'its packages'}: pip install 'lance-context[inspector]'"
        ) from exc
    spec = spec_from(uri, storage_options, branch)
    spec.open_read()  # a missing or foreign store, or a wrong key, fails here, in one line
    config = InspectorConfig(
        spec=spec,
        allow_writes=allow_writes,
        allowed_hosts=None if not _loopback(host) else ("127.0.0.1", "localhost", "[::1]", "::1"),
        page_size=page_size,
    )
    app = create_app(config)
    mode = "read and write" if allow_writes else "read-only"
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"lance-context inspector for {uri} ({mode}) on http://{shown}:{port}/  (Ctrl+C stops it)", err=True
    )
    if spec.encryption is None and spec.encrypted():
        click.echo(
            f"note: {uri} is encrypted and no key was given: pages showing records will say so "
            "(restart with --key-file PATH to read them)",
            err=True,
        )
    if not _loopback(host):
        click.echo(
            f"warning: listening on {host}: anyone who can reach this machine can read the store", err=True
        )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)


COMMANDS = [serve]
