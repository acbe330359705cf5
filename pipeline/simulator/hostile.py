"""Answers of a hostile server (issue 18): gateway pages, poisoned JSON, gzip bombs.

Each is cheap for the simulator: the gzip bomb is streamed from one small deflate block, so
an answer that inflates to a gibibyte costs the simulator a few kilobytes of memory.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from functools import cache

GATEWAY_STATUSES = (502, 503, 504)
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
DEEP_JSON = b"[" * 100_000  # nested 100,000 deep, never closed
_BLOCK = 1 << 20  # the bomb is made of 1 MiB runs of zeros


def gateway_json(status: int) -> bytes:
    """A gateway's error in JSON, shaped like Kie's envelope (what some proxies send)."""
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
    return f'{{"code":{status},"msg":"{reason}"}}'.encode()


INTERNAL_ERROR = b'{"code":500,"msg":"Internal server error","data":null}'


def gateway_page(status: int) -> bytes:
    reason = _REASONS[status]
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


@cache
def _deflated_block() -> bytes:
    # A full flush ends the block on a byte boundary with no back-references into it, so
    # the same bytes can be repeated to deflate any number of runs.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(_BLOCK)) + compressor.flush(zlib.Z_FULL_FLUSH)


@cache
def _crc_of_zeros(blocks: int) -> int:
    crc, zeros = 0, bytes(_BLOCK)
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    return crc


def gzip_bomb(inflated: int) -> tuple[int, Iterator[bytes]]:
    """(compressed length, chunks) of a gzip stream of `inflated` zero bytes (whole MiB)."""
    blocks = max(1, inflated // _BLOCK)
    block = _deflated_block()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = b"\x03\x00" + struct.pack(
        "<II", _crc_of_zeros(blocks), (blocks * _BLOCK) & 0xFFFFFFFF
    )
    length = len(header) + blocks * len(block) + len(trailer)

    def chunks() -> Iterator[bytes]:
        yield header
        for start in range(0, blocks, 64):
            yield block * min(64, blocks - start)
        yield trailer

    return length, chunks()
