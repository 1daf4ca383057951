"""The built-in captioner plugins, registered through the ``captioner`` entry points."""
