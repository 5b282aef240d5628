"""Webhook delivery as Close does it: one signed POST per event, retried until it is taken.

The signature (close-api-notes.md section 2) is the hex HMAC-SHA256, keyed with the
hex-decoded signature key, of the timestamp string followed by the raw body. Each attempt
is signed afresh with the current time (whether Close does so is unconfirmed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

DELIVERY_TIMEOUT_SEC = 5.0


def sign_webhook(body: bytes, key_hex: str, timestamp: int) -> dict[str, str]:
    """The `close-sig-hash` and `close-sig-timestamp` headers for `body`."""
    stamp = str(timestamp)
    digest = hmac.new(bytes.fromhex(key_hex), stamp.encode() + body, hashlib.sha256).hexdigest()
    return {"close-sig-hash": digest, "close-sig-timestamp": stamp}


@dataclass(frozen=True)
class Delivery:
    """How the delivery of one event ended."""

    event_id: str
    attempts: int
    last_status: int | None  # None: no HTTP answer (connection refused, timeout)
    delivered: bool


class WebhookDeliverer:
    """Posts events, in order, from one background thread."""

    def __init__(
        self,
        url: str,
        *,
        signature_key_hex: str,
        subscription_id: str,
        max_attempts: int,
        retry_delay_sec: float,
    ) -> None:
        bytes.fromhex(signature_key_hex)  # a bad key fails here, not in the thread
        self.url = url
        self._key_hex = signature_key_hex
        self._subscription_id = subscription_id
        self._max_attempts = max_attempts
        self._retry_delay_sec = retry_delay_sec
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="fakeclose-webhooks", daemon=True)
        self.deliveries: list[Delivery] = []

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread.start()

    def submit(self, event: dict[str, Any]) -> None:
        """Queue one event for delivery."""
        with self._idle:
            self._pending += 1
        self._queue.put(event)

    def wait(self, timeout: float) -> None:
        """Block until every queued event was delivered or given up; TimeoutError after
        `timeout` seconds."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout=timeout):
                raise TimeoutError(
                    f"{self._pending} webhook deliveries still pending after {timeout}s"
                )

    def stop(self) -> None:
        """Stop delivering (an attempt in flight may finish) and release the connection pool."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=DELIVERY_TIMEOUT_SEC + 1)
        self._session.close()

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self.deliveries.append(self._deliver(event))
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, event: dict[str, Any]) -> Delivery:
        body = json.dumps({"subscription_id": self._subscription_id, "event": event}).encode()
        status: int | None = None
        attempt = 0
        while attempt < self._max_attempts and not self._stopping.is_set():
            if attempt:
                self._stopping.wait(self._retry_delay_sec)
            attempt += 1
            status = self._post(body)
            if status is not None and 200 <= status < 300:
                return Delivery(event["id"], attempt, status, delivered=True)
        return Delivery(event["id"], attempt, status, delivered=False)

    def _post(self, body: bytes) -> int | None:
        headers = {"content-type": "application/json"}
        headers.update(sign_webhook(body, self._key_hex, int(time.time())))
        try:
            response = self._session.post(
                self.url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT_SEC
            )
        except requests.RequestException:
            return None  # Close counts it as a failed attempt, as any non-2xx
        response.close()
        return response.status_code
