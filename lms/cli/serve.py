"""`lms serve`: the prediction service (FastAPI under uvicorn), with its live routes."""

from __future__ import annotations

from typing import Annotated

import typer

from lms.errors import UsageError


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default 18090, LMS_SERVE_PORT).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes, each with its own models and caches (default 1).",
        ),
    ] = None,
) -> None:
    """Serve predictions until interrupted (settings: LMS_SERVE_*; models from the registry)."""
    import socket

    import uvicorn
    from pydantic import ValidationError

    from serving.settings import ServeSettings

    try:
        settings = ServeSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(
            f"invalid LMS_SERVE_{str(first['loc'][0]).upper()}: {first['msg']}"
        ) from None
    host = host or settings.host
    port = port or settings.port
    with socket.socket() as probe:  # a clear line instead of uvicorn's traceback
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if probe.connect_ex((host, port)) == 0:
            raise UsageError(f"port {port} on {host} is already in use; pass --port")
    typer.echo(f"serving predictions on http://{host}:{port} (docs: /docs)", err=True)
    uvicorn.run(
        "serving.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        access_log=False,  # the service logs every request itself, as JSON
        log_level="info",
    )
