"""IDX files (the MNIST family's format), plain or gzip-compressed.

Format (big-endian): two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, one
4-byte size per dimension, then the data in C order. Every check names the file and what was expected.

The header is read first and the size it announces is checked before anything is allocated: against
:data:`MAX_IDX_BYTES`, against the file's size (plain), or against the most a gzip file of its size can
inflate to (:data:`DEFLATE_MAX_RATIO`). A compressed file is then inflated as a stream into a buffer of exactly
that size, so a file that inflates to more (a decompression bomb) costs at most one more byte to detect.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from trainlab.errors import DataError

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
# Bytes of data one IDX file may announce: 2 GiB, 45x the largest MNIST-family file (train images, 47 MB) and
# more than EMNIST's largest (0.55 GB). A header claiming more is corrupt or hostile; tests lower it.
MAX_IDX_BYTES = 2 * 1024**3
# Deflate expands at most ~1032:1 (a 258-byte match costs at least 2 bits); a gzip file that announces more
# data than this ratio allows cannot hold it. Rounded up for the gzip header and trailer.
DEFLATE_MAX_RATIO = 1100
READ_CHUNK = 1 << 20  # bytes inflated per read: memory beyond the result stays at about 1 MiB


def size_text(n: int) -> str:
    """``n`` bytes in words, e.g. ``2.0 GiB``."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def read_idx(path: Path, expect_ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``expect_ndim`` dimensions into a uint8 array."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            compressed = f.read(2) == GZIP_MAGIC  # compressed, whatever the file is called
            f.seek(0)
            if not compressed:
                return _read_stream(path, f, expect_ndim, size, compressed=False)
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return _read_stream(path, g, expect_ndim, size, compressed=True)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # BadGzipFile first: it is an OSError
        raise DataError(f"{path}: gzip data is truncated or corrupt ({exc}); download the file again") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read_stream(path: Path, f: io.BufferedIOBase, expect_ndim: int, file_size: int, compressed: bool) -> np.ndarray:
    """Parse the header from ``f``, check the size it announces, then read exactly that much data."""
    head = f.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: {len(head)} bytes is too short for an IDX header (truncated file?)")
    zero, dtype, ndim = struct.unpack(">HBB", head)
    if zero != 0 or dtype != UBYTE or ndim != expect_ndim:
        magic = int.from_bytes(head, "big")
        want = (UBYTE << 8) | expect_ndim
        raise DataError(
            f"{path}: wrong IDX magic number 0x{magic:08x}; expected 0x{want:08x} "
            f"(unsigned bytes, {expect_ndim} dimension{'s' if expect_ndim > 1 else ''})"
        )
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", sizes)
    # Python ints: 2^31 x 2^31 x 4 is 2^64, which wraps to 0 in NumPy's int64 and would pass as an empty file.
    expected = math.prod(dims)
    announced = f"{path}: IDX header announces {'x'.join(map(str, dims))} = {expected} bytes of data"
    if not compressed and file_size - header != expected:
        raise DataError(f"{announced} but the file has {file_size - header} (truncated or corrupt; download it again)")
    if expected > MAX_IDX_BYTES:
        raise DataError(
            f"{announced}, more than the {size_text(MAX_IDX_BYTES)} an IDX file may hold here: a corrupt header "
            "or not an MNIST-family file"
        )
    if compressed and expected + header > file_size * DEFLATE_MAX_RATIO:
        raise DataError(
            f"{announced} but a {file_size}-byte gzip file inflates to at most {file_size * DEFLATE_MAX_RATIO} "
            "(deflate expands at most ~1032:1): a corrupt header; download the file again"
        )
    data = bytearray(expected)  # allocated only now that the size is known to be plausible
    view = memoryview(data)
    got = 0
    while got < expected:
        n = f.readinto(view[got : got + READ_CHUNK])
        if not n:
            raise DataError(f"{announced} but the file has {got} (truncated or corrupt; download it again)")
        got += n
    if f.read(1):  # one byte more than announced: stop here, however much more the stream would inflate to
        raise DataError(
            f"{announced} but the {'gzip stream' if compressed else 'file'} holds more: a corrupt header or a "
            "decompression bomb; download the file again"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)  # writable: backed by the bytearray
