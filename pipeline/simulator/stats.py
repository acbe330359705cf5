"""Counters and the request log behind /__sim/stats and /__sim/requests.

Everything is keyed by account index, never by API key: the stats are served without auth
and end up in test logs.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

REQUEST_LOG_SIZE = 100_000  # a long CLI session must not grow without bound


@dataclass
class Stats:
    creates: int = 0
    creates_by_fingerprint: Counter[str] = field(default_factory=Counter)
    lost_answer_task_ids: list[str] = field(default_factory=list)
    rate_limited: Counter[str] = field(default_factory=Counter)
    queries: int = 0  # recordInfo requests received
    download_url_calls: int = 0
    credit_calls: int = 0
    file_downloads: int = 0
    file_download_bytes: int = 0
    uploads: int = 0  # files stored by the upload endpoints
    upload_downloads: int = 0  # GETs of uploaded files
    callbacks: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    errors_by_code: Counter[int] = field(default_factory=Counter)
    request_count: int = 0  # all API requests, also those that fell out of the log
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))

    def log_request(
        self,
        when: float,
        method: str,
        path: str,
        account: int | None,
        http_status: int | None,
        code: int | None,
        fault: str | None,
        body: Any = None,
    ) -> None:
        """One API request: `code` is the envelope code, None when no JSON answer was sent."""
        self.request_count += 1
        if code is not None and code != 200:
            self.errors_by_code[code] += 1
        elif http_status is not None and http_status >= 500:
            self.errors_by_code[http_status] += 1
        self.requests.append(
            {
                "time": when,
                "method": method,
                "path": path,
                "account": account,
                "http_status": http_status,
                "code": code,
                "fault": fault,
                **({"body": body} if body is not None else {}),
            }
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "creates": self.creates,
            "creates_by_fingerprint": dict(self.creates_by_fingerprint),
            "lost_answers": len(self.lost_answer_task_ids),
            "lost_answer_task_ids": list(self.lost_answer_task_ids),
            "rate_limited": {
                "create": self.rate_limited["create"],
                "query": self.rate_limited["query"],
            },
            "queries": self.queries,
            "download_url_calls": self.download_url_calls,
            "credit_calls": self.credit_calls,
            "file_downloads": self.file_downloads,
            "file_download_bytes": self.file_download_bytes,
            "uploads": self.uploads,
            "upload_downloads": self.upload_downloads,
            "callbacks": {
                "delivered": self.callbacks["delivered"],
                "failed_attempts": self.callbacks["failed_attempts"],
                "gave_up": self.callbacks["gave_up"],
            },
            "faults": dict(self.faults),
            "errors_by_code": {str(code): n for code, n in sorted(self.errors_by_code.items())},
            "requests": self.request_count,
        }
