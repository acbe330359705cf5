"""Result files of every media type: small, valid, and different for every result.

Images are made here (a solid-colour PNG or baseline JPEG, coloured and tagged by the result,
so four images of one task have four hashes); videos are the bundled MP4s, byte for byte (the
runner's tests compare hashes with them); audio is a few frames of silent MP3 behind an ID3
tag naming the result. Nothing needs an imaging library.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
}
# A 1x1 lossless WebP (the smallest valid file); WebP results are all this one picture.
_WEBP = bytes.fromhex("524946461a000000574542505650384c0d0000002f00000010071011118888fe0700")
SIDE = 64  # images are SIDE x SIDE pixels


def extension(media: str, effective: Mapping[str, Any]) -> str:
    """The file extension of a task's results: by media, and for images by the asked format."""
    if media == "video":
        return "mp4"
    if media == "audio":
        return "mp3"
    wanted = str(effective.get("output_format") or effective.get("format") or "png").lower()
    return {"jpeg": "jpg", "jpg": "jpg", "webp": "webp"}.get(wanted, "png")


def orientation(effective: Mapping[str, Any]) -> str:
    """ "portrait" for 9:16-like or portrait aspect ratios, else "landscape"."""
    ratio = str(effective.get("aspect_ratio") or effective.get("ratio") or "landscape")
    if ratio == "portrait":
        return ratio
    width, sep, height = ratio.partition(":")
    try:
        return "portrait" if sep and float(width) < float(height) else "landscape"
    except ValueError:
        return "landscape"


@cache
def video_bytes(aspect_ratio: str) -> bytes:
    """The bundled MP4 for an aspect ratio (anything but "portrait" is landscape)."""
    name = "portrait.mp4" if aspect_ratio == "portrait" else "landscape.mp4"
    return (resources.files("pipeline.simulator") / "media" / name).read_bytes()


def result_bytes(ext: str, tag: str, aspect: str) -> bytes:
    """The bytes of one result; `tag` (task id and index) makes them unique."""
    if ext == "mp4":
        return video_bytes(aspect)
    if ext == "mp3":
        return _mp3(tag)
    if ext == "webp":
        return _WEBP
    shade = hashlib.sha256(tag.encode()).digest()[:3]
    return _jpeg(tag, shade[0]) if ext == "jpg" else _png(tag, shade)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@cache
def _png(tag: str, rgb: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + rgb * SIDE for _ in range(SIDE))  # filter type 0 per row
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", b"Comment\x00" + tag.encode())
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


# Baseline JPEG, one grey component, quantisation all 1: a solid block has only a DC term.
_DC_BITS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])  # the standard DC table
_DC_CODES = [
    "00", "010", "011", "100", "101", "110", "1110", "11110", "111110", "1111110",
    "11111110", "111111110",
]  # fmt: skip


def _segment(marker: int, data: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(data) + 2) + data


def _bits_of(value: int) -> str:
    """The DC category's code and the value's bits, as JPEG writes a difference."""
    category = abs(value).bit_length()
    if category == 0:
        return _DC_CODES[0]
    raw = value if value > 0 else value + (1 << category) - 1
    return _DC_CODES[category] + format(raw, f"0{category}b")


@cache
def _jpeg(tag: str, grey: int) -> bytes:
    blocks = (SIDE // 8) ** 2
    # The first block carries the DC value, the others a difference of 0; each ends with EOB
    # (code "0" of a one-symbol AC table).
    bits = _bits_of(8 * (grey - 128)) + "0" + (_bits_of(0) + "0") * (blocks - 1)
    bits += "1" * (-len(bits) % 8)  # pad with ones
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    scan = scan.replace(b"\xff", b"\xff\x00")  # byte stuffing
    return (
        b"\xff\xd8"
        + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + _segment(0xFE, tag.encode())
        + _segment(0xDB, b"\x00" + b"\x01" * 64)
        + _segment(0xC0, struct.pack(">BHHBBBB", 8, SIDE, SIDE, 1, 1, 0x11, 0))
        + _segment(0xC4, b"\x00" + _DC_BITS + bytes(range(12)))
        + _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
        + _segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
        + scan
        + b"\xff\xd9"
    )


@cache
def _mp3(tag: str) -> bytes:
    # ID3v2.3 with one TXXX frame, then 40 silent MPEG-1 Layer III frames (128 kbit/s,
    # 44.1 kHz, mono: 417 bytes each, all-zero side information), about a second of audio.
    text = b"\x00result\x00" + tag.encode()
    frame = b"TXXX" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    header = b"ID3\x03\x00\x00" + syncsafe
    audio = (b"\xff\xfb\x90\xc4" + bytes(417 - 4)) * 40
    return header + frame + audio


def sniff(data: bytes) -> str | None:
    """The extension the bytes really are, by magic number, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "mp3"
    if data[4:8] in (b"moov", b"mdat", b"free", b"wide"):
        return "mp4"
    return None
