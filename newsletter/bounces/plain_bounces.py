"""Bounces that are no delivery status notification: the plain-text ones of Exim
("This message was created automatically by mail delivery software") and qmail
("Hi. This is the qmail-send program"). A small heuristic for these two formats:
flufl.bounce knows more, but tells only which addresses failed, not whether for
good, which is what the policy needs, and most MTAs now write RFC 3464 reports.

Each failed address comes with the lines that say why; a status code among them
(5.1.1 or 550) says whether the failure is permanent, else the bounce's own words do.
"""

import re
from dataclasses import dataclass
from email.message import EmailMessage

EXIM = "This message was created automatically by mail delivery software."
EXIM_FAILED = re.compile(r"could not be delivered.*?failed:\s*$", re.DOTALL | re.MULTILINE)
EXIM_ADDRESS = re.compile(r"^  (\S+@\S+)\s*$")
QMAIL = "Hi. This is the qmail-send program"
QMAIL_ADDRESS = re.compile(r"^<(\S+@\S+)>:\s*$")
# Where the copy of the returned message starts.
COPY = re.compile(r"^-{3,} ?(This is a copy|Below this line)", re.MULTILINE)
ENHANCED_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
BASIC_STATUS = re.compile(r"(?<![\d.])([245])\d\d(?![\d.])")
RETURNED_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Failure:
    address: str
    permanent: bool
    # The enhanced status code found in the reason, if any.
    status: str | None
    detail: str


@dataclass(frozen=True)
class Bounce:
    failures: list[Failure]
    # The Message-ID in the copy of our message that the bounce returns, if it does.
    message_id: str | None


def read(message: EmailMessage) -> Bounce | None:
    """The failures an Exim or qmail bounce reports (none for Exim's delay warnings);
    None when the message is neither."""
    text = _text(message)
    copy = COPY.search(text)
    # The bounce's own words, without the copy of our message that follows them.
    words = text[: copy.start()] if copy else text
    if EXIM in words:
        failures = _failures(words, EXIM_ADDRESS, after=EXIM_FAILED)
    elif QMAIL in words:
        failures = _failures(words, QMAIL_ADDRESS, after=None)
    else:
        return None
    returned = RETURNED_MESSAGE_ID.search(text)
    return Bounce(failures, returned and returned[1])


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def _failures(
    words: str, address_line: re.Pattern[str], after: re.Pattern[str] | None
) -> list[Failure]:
    """Each address line and the reason lines under it."""
    permanent = "permanent error" in words
    if after is not None:
        start = after.search(words)
        if start is None:
            return []
        words = words[start.end() :]
    blocks: list[tuple[str, list[str]]] = []
    for line in words.splitlines():
        if found := address_line.match(line):
            blocks.append((found[1], []))
        elif blocks and line.strip():
            blocks[-1][1].append(line.strip())
    return [_failure(address, " ".join(reason), permanent) for address, reason in blocks]


def _failure(address: str, reason: str, permanent: bool) -> Failure:
    status = ENHANCED_STATUS.search(reason)
    basic = BASIC_STATUS.search(reason)
    code = status[1][0] if status else basic and basic[1]
    return Failure(
        address=address.strip("<>"),
        permanent=code == "5" if code else permanent,
        status=status and status[1],
        detail=reason,
    )
