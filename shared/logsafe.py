"""Log lines that a crafted S3 key or notification field cannot forge.

Keys, bucket names and notification fields come from whoever can write to the bucket or the
SQS queue. A newline, a carriage return, an ANSI escape or a Unicode direction override in
one of them could fake a second log line or hide part of this one, so every control
character in a finished log message is written as an escape (``\\n``, ``\\x1b``, ``\\u202e``).
Loggers come from ``get_logger(__name__)``, which adds the filter to the module's logger.
"""
from __future__ import annotations

import logging
import re

# C0 and C1 controls, DEL, and the Unicode line separators and bidirectional controls
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with every control character escaped (the rest unchanged)."""
    s = str(text)
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), s)


class EscapeControls(logging.Filter):
    """Render the message once, escaped; a handler then prints it as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's problem to report
            return True
        escaped = printable(message)
        if escaped != message or record.args:
            record.msg, record.args = escaped, None
        return True


_FILTER = EscapeControls()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` whose records are escaped before any handler sees them."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
