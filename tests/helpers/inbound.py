"""What comes back to the inbound listener: our addresses, and the digest copies that
reports quote back."""

from dataclasses import dataclass

BOUNCES = "bounces@news.example"
UNSUBSCRIBE = "unsubscribe@news.example"
# Where providers' complaint feedback loops send their reports.
FEEDBACK_LOOP = "bounces+fbl@news.example"


@dataclass(frozen=True)
class Copy:
    """What a subscriber's digest copy carried, which reports quote back."""

    address: str
    return_path: str
    message_id: str
    unsubscribe_url: str
    unsubscribe_address: str


def copies_of(smtp):
    """Each subscriber's digest copy, as the SMTP server received it."""
    copies = {}
    received = zip(smtp.received, smtp.recipients, smtp.return_paths, strict=True)
    for message, recipient, path in received:
        header = str(message["List-Unsubscribe"])
        link = header.split("<", 1)[1].split(">", 1)[0]
        mailto_address = header.split("<mailto:", 1)[1].split("?", 1)[0]
        copies[recipient] = Copy(recipient, path, message["Message-ID"], link, mailto_address)
    return copies
