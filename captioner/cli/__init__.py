"""The ``captioner`` command line: the group and its global options here, the commands by group in
the modules beside it. Each command imports what it needs when it runs, so ``--help`` stays light."""

from __future__ import annotations

import os

import click

from ..errors import DEBUG_VARIABLE
from ..plugins import PLUGINS_DIR_VARIABLE
from .captioning import bulk, caption, postprocess, postprocessors
from .dataset_commands import data
from .model_commands import average, ensemble, evidence, memory, models
from .plugin_commands import new_plugin, plugins
from .serving import ui
from .training_commands import evaluate, evaluate_objects, train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="captioner")
@click.option("--plugins-dir", "plugins_dirs", type=click.Path(exists=True, file_okay=False), multiple=True,
              help=f"Also load each *.py file in this folder as a plugin (repeatable; sets {PLUGINS_DIR_VARIABLE}).")
@click.option("--debug", is_flag=True, help=f"Print the traceback behind an error, plugin errors included "
                                            f"(sets {DEBUG_VARIABLE}=1).")
def cli(plugins_dirs: tuple[str, ...], debug: bool) -> None:
    """Caption images with CNN encoders and recurrent decoders."""
    if plugins_dirs:
        os.environ[PLUGINS_DIR_VARIABLE] = os.pathsep.join(plugins_dirs)  # plugins load lazily, on first use
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"


for command in (caption, bulk, postprocess, postprocessors, ui, models, train_command, evaluate, evaluate_objects,
                average, ensemble, memory, evidence, data, plugins, new_plugin):
    cli.add_command(command)


def main() -> None:
    cli()
