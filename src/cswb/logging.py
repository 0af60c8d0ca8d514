"""The named logger of cswb.

All modules log through :func:`get_logger`, which returns a child of the ``cswb`` logger. A
filter on that logger scrubs values that look like personal data (phone numbers, e-mail
addresses, street addresses with house numbers) from every message, as a second line of
defence: the first is that code never passes field values to the logger.
"""

from __future__ import annotations

import logging
import re

ROOT_NAME = "cswb"

_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"(?<!\d)(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?!\d)"), "[phone]"),
    (re.compile(r"\b\d{1,6}(?:-[A-Z])?\s+(?:[NSEW]\s+)?[A-Z0-9]+(?:\s[A-Z]+)*\s"
                r"(?:ST|AV|AVE|RD|DR|BLVD|LN|CT|PL|WAY|PKWY|HWY|TER|CIR)\b", re.IGNORECASE),
     "[address]"),
)


def scrub(text: str) -> str:
    """Replace anything that looks like a phone, e-mail or street address in ``text``."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


class PrivacyFilter(logging.Filter):
    """Rewrites each record's message and traceback with :func:`scrub` before handlers see it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            # an exception's text may quote data; keep its formatted, scrubbed form only
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the ``cswb`` logger or one of its children (``cswb.<name>``)."""
    root = logging.getLogger(ROOT_NAME)
    if not any(isinstance(f, PrivacyFilter) for f in root.filters):
        root.addFilter(PrivacyFilter())
    if not name:
        return root
    child = root.getChild(name.removeprefix(f"{ROOT_NAME}."))
    if not any(isinstance(f, PrivacyFilter) for f in child.filters):
        child.addFilter(PrivacyFilter())
    return child


def configure_logging(level: str = "INFO") -> None:
    """Send cswb's log to standard error at ``level`` (idempotent)."""
    root = get_logger()
    root.setLevel(level.upper())
    if not any(getattr(h, "_cswb", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._cswb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
