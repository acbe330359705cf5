"""Price rules as the price list (2026-06-30) gives them, mapped by hand for a few models: test
data for the rule evaluator and for decimal credits end to end (the catalog carries its own)."""

from __future__ import annotations

from typing import Any

SEEDANCE_FAST: dict[str, Any] = {  # 33 credits/s at 720p without a video input ($0.165)
    "table": [
        {"when": {"resolution": "720p"}, "present": ["reference_video_urls"],
         "per_second": 20, "field": "duration"},
        {"when": {"resolution": "720p"}, "absent": ["reference_video_urls"],
         "per_second": 33, "field": "duration"},
        {"when": {"resolution": "480p"}, "present": ["reference_video_urls"],
         "per_second": 9, "field": "duration"},
        {"when": {"resolution": "480p"}, "absent": ["reference_video_urls"],
         "per_second": 15.5, "field": "duration"},
    ],
    "default": None,
}  # fmt: skip
GROK_VIDEO: dict[str, Any] = {
    "table": [
        {"when": {"resolution": "720p"}, "present": ["duration"], "per_second": 3,
         "field": "duration"},
        {"when": {"resolution": "480p"}, "present": ["duration"], "per_second": 1.6,
         "field": "duration"},
    ],
    "default": None,
}  # fmt: skip
WAN_VIDEO: dict[str, Any] = {
    "table": [
        {"when": {"resolution": "1080p"}, "per_second": 24, "field": "duration"},
        {"when": {"resolution": "720p"}, "per_second": 16, "field": "duration"},
    ],
    "default": None,
}
