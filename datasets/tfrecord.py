"""TFRecord files without TensorFlow: the record framing, checked, and the ``tf.train`` protobuf messages.

A TFRecord file is a sequence of records, each ``uint64 length | uint32 masked CRC-32C of the length | data |
uint32 masked CRC-32C of the data`` (little-endian; mask ``((crc >> 15 | crc << 17) + 0xa282ead8) mod 2^32``).
:func:`records` reads them and verifies both checksums, so a truncated or damaged file fails with its name
and the record's offset instead of parsing as garbage. The messages (``Example``, ``SequenceExample``) are
those of the ``tfrecord`` package (its compiled ``example_pb2``, on the ``protobuf`` runtime), whose own
reader skips the checksums.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import crc32c
import numpy as np
from tfrecord import example_pb2

Example = example_pb2.Example
SequenceExample = example_pb2.SequenceExample
_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """TensorFlow's masked CRC-32C of ``data``."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def records(path: str | os.PathLike) -> Iterator[bytes]:
    """The records of a TFRecord file, in order, after checking their framing and checksums."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such TFRecord file")
    with open(path, "rb") as fh:
        while True:
            offset = fh.tell()
            header = fh.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header at byte {offset}")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{path}: the record at byte {offset} has a bad length checksum; not a TFRecord "
                                 "file, or a damaged one")
            data = fh.read(length)
            footer = fh.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{path}: the record at byte {offset} is truncated ({len(data)} of {length} bytes)")
            if masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{path}: the record at byte {offset} has a bad data checksum; the file is damaged")
            yield data


def parse(message: type, data: bytes, where: str):
    """``message.FromString(data)`` with a clear error naming ``where``."""
    try:
        return message.FromString(data)
    except Exception as err:  # protobuf's DecodeError and friends
        raise ValueError(f"{where}: not a tf.train.{message.__name__} ({type(err).__name__}: {err})") from None


def raw_bytes(feature, where: str) -> bytes:
    """The single bytes value of a ``tf.train.Feature`` (how DeepMind stores arrays: ``array.tobytes()``)."""
    values = feature.bytes_list.value
    if len(values) != 1:
        raise ValueError(f"{where}: expected one bytes value, got {len(values)}")
    return values[0]


def array(data: bytes, dtype: str | np.dtype, where: str) -> np.ndarray:
    """Raw little-endian bytes as a 1-D array of ``dtype``; a length that is not a whole number of items is an
    error naming ``where``."""
    dtype = np.dtype(dtype).newbyteorder("<")
    if len(data) % dtype.itemsize:
        raise ValueError(f"{where}: {len(data)} bytes is not a whole number of {dtype.name} values")
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="))
