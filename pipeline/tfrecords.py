"""The TFRecord framing, written and checked without TensorFlow.

A record is ``uint64 length, uint32 masked CRC32C(length), data, uint32
masked CRC32C(data)``, little-endian (the format ``tf.data.TFRecordDataset``
reads). The Beam job writes shards with ``write_record`` and reads every one
back with ``count_records`` before it commits ``metadata.json``.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import google_crc32c

_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4


class CorruptRecordError(ValueError):
    """A TFRecord file whose framing or checksums are wrong: names the file and the byte offset."""


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_record(stream: BinaryIO, record: bytes) -> int:
    """Appends one record in the TFRecord framing; returns the bytes written."""
    length = struct.pack("<Q", len(record))
    stream.write(length + struct.pack("<I", _masked_crc(length)) + record + struct.pack("<I", _masked_crc(record)))
    return _HEADER + len(record) + _FOOTER


def _read_length(stream: BinaryIO, name: str, offset: int, count: int) -> int | None:
    """The next record's data length from its checked header, or None at the end of the stream.

    Raises:
      CorruptRecordError: a truncated header or a bad length checksum, naming the file and the offset.
    """
    header = stream.read(_HEADER)
    if not header:
        return None
    if len(header) < _HEADER:
        raise CorruptRecordError(f"{name}: truncated record header at byte {offset} (record {count})")
    length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
    if _masked_crc(length_bytes) != length_crc:
        raise CorruptRecordError(f"{name}: bad length checksum at byte {offset} (record {count})")
    return struct.unpack("<Q", length_bytes)[0]


def count_records(stream: BinaryIO, name: str = "<stream>") -> int:
    """Counts the records of a TFRecord stream, checking every length and data checksum.

    Args:
      stream: an open binary stream at the file's start.
      name: the file's name, for errors.

    Returns:
      The number of records.

    Raises:
      CorruptRecordError: naming ``name`` and the offset of the first bad record.
    """
    count, offset = 0, 0
    while True:
        length = _read_length(stream, name, offset, count)
        if length is None:
            return count
        body = stream.read(length + _FOOTER)
        if len(body) < length + _FOOTER:
            raise CorruptRecordError(
                f"{name}: truncated record at byte {offset} (record {count}: {length} bytes announced, "
                f"{max(0, len(body) - _FOOTER)} present)")
        (data_crc,) = struct.unpack("<I", body[length:])
        if _masked_crc(body[:length]) != data_crc:
            raise CorruptRecordError(f"{name}: bad data checksum at byte {offset} (record {count})")
        count += 1
        offset += _HEADER + length + _FOOTER


def count_framed_records(stream: BinaryIO, name: str = "<stream>") -> int:
    """Counts records by their length headers alone, seeking past the data: cheap enough for every run.

    Each header's checksum is checked (so a wrong length is caught), the data
    checksums are not (``count_records`` checks those).

    Raises:
      CorruptRecordError: naming ``name`` and the offset of a bad or truncated header or record.
    """
    count, offset = 0, 0
    stream.seek(0, 2)
    end = stream.tell()  # tf.io.gfile's seek returns None
    stream.seek(0)
    while offset < end:
        length = _read_length(stream, name, offset, count)
        offset += _HEADER + length + _FOOTER
        if offset > end:
            raise CorruptRecordError(f"{name}: truncated record at byte {offset - _HEADER - length - _FOOTER} "
                                     f"(record {count}: {length} bytes announced, the file ends first)")
        stream.seek(offset)
        count += 1
    return count
