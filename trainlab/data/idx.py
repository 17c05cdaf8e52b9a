"""IDX files (the MNIST family's format), plain or gzip-compressed.

Format (big-endian): two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, one
4-byte size per dimension, then the data in C order. Every check names the file and what was expected.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from trainlab.errors import DataError

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: Path, expect_ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``expect_ndim`` dimensions into a uint8 array."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == GZIP_MAGIC:  # compressed, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: gzip data is truncated or corrupt ({exc}); download the file again") from None
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header (truncated file?)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != UBYTE or ndim != expect_ndim:
        magic = int.from_bytes(raw[:4], "big")
        want = (UBYTE << 8) | expect_ndim
        raise DataError(
            f"{path}: wrong IDX magic number 0x{magic:08x}; expected 0x{want:08x} "
            f"(unsigned bytes, {expect_ndim} dimension{'s' if expect_ndim > 1 else ''})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header announces {'x'.join(map(str, dims))} = {expected} bytes of data "
            f"but the file has {len(raw) - header} (truncated or corrupt; download it again)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
