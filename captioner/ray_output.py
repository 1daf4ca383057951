"""A Ray Data sink for JSON lines written exactly as ``captioner caption --format jsonl`` writes them
(Ray's own ``write_json`` escapes ``/`` and names its files ``*.json``)."""

from __future__ import annotations

import pyarrow
from ray.data.block import BlockAccessor
from ray.data.datasource import BlockBasedFileDatasink


class JsonLinesDatasink(BlockBasedFileDatasink):
    """Writes one string column (a JSON object per row) into ``*.jsonl`` files, one per block."""

    def __init__(self, path: str, column: str) -> None:
        super().__init__(path, file_format="jsonl")
        self.column = column

    def write_block_to_file(self, block: BlockAccessor, file: pyarrow.NativeFile) -> None:
        lines = block.to_arrow().column(self.column).to_pylist()
        file.write("".join(line + "\n" for line in lines).encode("utf-8"))
