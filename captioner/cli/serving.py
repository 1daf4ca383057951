"""``ui``: the web interface and the HTTP API."""

from __future__ import annotations

import click

from ..errors import CaptionerError
from .common import CommandError, device_option


@click.command()
@click.option("--model", "-m", "models", multiple=True,
              help="Model name or folder to serve; repeat for several (the first is the default).")
@device_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Also serve through a public Gradio share link (printed at start).")
@click.option("--mcp", is_flag=True, help="Also serve the caption endpoint as an MCP tool.")
@click.option("--queue-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Requests that may wait; more get a 'busy' answer.")
@click.option("--max-batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Concurrent requests captioned in one forward pass.")
def ui(models, device, host, port, share, mcp, queue_size, max_batch_size) -> None:
    """Start the web interface (Gradio, and the HTTP API at /v1), with the shipped default model unless --model is given."""
    from ..ui import UIConfig, build_app, launch

    config = UIConfig(models=models, device=device, queue_size=queue_size, max_batch_size=max_batch_size)
    try:
        app = build_app(config)
    except CaptionerError as error:
        raise CommandError(str(error)) from None
    try:
        _, local_url, share_url = launch(app, server_name=host, server_port=port, share=share, mcp_server=mcp,
                                         quiet=True, prevent_thread_lock=True)  # our own lines, not Gradio's hints
        click.echo(f"web interface: {local_url}  (HTTP API docs: {local_url}v1/docs)")
        if share_url:
            click.echo(f"public link: {share_url}")
        if mcp:
            click.echo(f"MCP server: {local_url}gradio_api/mcp/")
        click.echo("press Ctrl+C to stop")
        app.block_thread()
    finally:
        app.captioner_service.close()
