"""The console channel (development): writes each message to a stream and keeps it in memory."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from . import OutgoingMessage


class ConsoleChannel:
    """Prints ``[<kind>] <recipient>: <summary>`` and records the message in :attr:`sent`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        with self._lock:
            self.sent.append(message)
            stream.write(f"[通知 {message.kind}] {message.recipient_address}: {message.summary}\n")
            stream.flush()
