"""A JPEG file's frame header (size, colour components, coding process), read without decoding.

The GPU loader reads this for every file before it hands the bytes to the device
decoder: it needs the size (to refuse decompression bombs) and whether the device
decoder reads this kind of JPEG at all. Pillow's ``Image.open`` parses much more of
the file in Python, which at thousands of files a second held the GIL for longer
than the GPU took to caption them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Start-of-frame markers: 0xC0 baseline, 0xC1 extended sequential, 0xC2 progressive (Huffman coded);
# the rest are lossless, hierarchical or arithmetic-coded.
HUFFMAN_SOF = frozenset({0xC0, 0xC1, 0xC2})
OTHER_SOF = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length: TEM, RST0-7
_FRAME = struct.Struct(">BHHB")  # precision, height, width, components


@dataclass(frozen=True)
class JpegFrame:
    """What a JPEG's start-of-frame segment says."""

    width: int
    height: int
    components: int  # 1 grey, 3 colour (YCbCr or RGB), 4 CMYK or YCCK
    precision: int  # bits per sample
    marker: int  # which start-of-frame marker: the coding process

    @property
    def common(self) -> bool:
        """An 8-bit grey or colour JPEG, Huffman coded (baseline or progressive), its size in the
        header: what GPU decoders read."""
        return (self.marker in HUFFMAN_SOF and self.precision == 8 and self.components in (1, 3)
                and self.width > 0 and self.height > 0)


def read_jpeg_frame(data: bytes | bytearray | memoryview) -> JpegFrame | None:
    """The frame header of JPEG ``data``, or None if it is not a JPEG or has none before its first scan."""
    if data[:2] != b"\xff\xd8":
        return None
    position, end = 2, len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return None  # not at a marker: a damaged file
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in STANDALONE:
            position += 2
            continue
        if marker in HUFFMAN_SOF or marker in OTHER_SOF:
            if position + 10 > end:
                return None
            precision, height, width, components = _FRAME.unpack_from(data, position + 4)
            return JpegFrame(width, height, components, precision, marker)
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        position += 2 + ((data[position + 2] << 8) | data[position + 3])
    return None
