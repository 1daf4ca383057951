"""The decoding methods, listed once for the API, the command line and the web page (no torch here)."""

from typing import Literal, get_args

Method = Literal["beam", "greedy", "sample"]
METHODS: tuple[str, ...] = get_args(Method)
