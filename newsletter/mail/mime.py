"""Mail as bytes, without building a stdlib ``email`` object per message.

The stdlib's generator spends about 2 ms on each multipart message; a service
that sends thousands a second cannot. The parts that are the same for every copy
(From, Subject, the MIME skeleton) are made once with the stdlib; each copy then
only adds its own headers and its quoted-printable bodies.
"""

import re
import secrets
from email import policy, quoprimime
from email.charset import Charset
from email.message import EmailMessage
from email.utils import formataddr

# A display name of atoms and spaces only needs no quoting or encoding (RFC 5322 phrase).
PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")

PART_HEAD = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'


def qp(text: str) -> bytes:
    """Quoted-printable bytes for UTF-8 text, CRLF line ends.

    No line starts with a dot (it is written ``=2E``), so SMTP never has to double
    one in a message made of these pieces, whichever way they are joined."""
    latin = text.encode("utf-8").decode("latin-1")
    # Two characters to spare on each line for a leading dot written as =2E.
    encoded = quoprimime.body_encode(latin, maxlinelen=74, eol="\r\n").encode("ascii")
    if encoded.startswith(b"."):
        encoded = b"=2E" + encoded[1:]
    return encoded.replace(b"\n.", b"\n=2E")


# What a link made of our base URL and a token holds: no "=" and no white space, so as
# quoted-printable only its line length needs care.
PLAIN_URL = re.compile(r"[A-Za-z0-9:/._~%-]*")
URL_LINE = 73


def qp_url(url: str) -> bytes:
    """A URL as ``qp`` encodes it, made faster for a plain one (a tracked digest puts
    several in every copy): cut into lines with soft breaks, a leading dot written =2E."""
    if not PLAIN_URL.fullmatch(url):
        return qp(url)
    lines = [url[start : start + URL_LINE] for start in range(0, len(url), URL_LINE)]
    return b"=\r\n".join(
        f"=2E{line[1:]}".encode() if line.startswith(".") else line.encode() for line in lines
    )


def address_header(name: str, address: str) -> str:
    """``Name <address>`` as a To header carries it: the stdlib quotes and encodes the
    names that need it, a plain name is written as it is. An address with a non-ASCII
    local part goes only with SMTPUTF8, whose headers are UTF-8 (RFC 6532): the name
    is then a quoted string in UTF-8 too."""
    if not name:
        return address
    if "=?" in name:
        # Mail clients decode RFC 2047 encoded words even inside quotes, so a name that
        # looks like one would show as whatever it encodes, line breaks included. Written
        # as an encoded word itself, it shows as typed.
        return f"{Charset('utf-8').header_encode(name)} <{address}>"
    if not address.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    if PLAIN_NAME.fullmatch(name) and name.strip() == name:
        return f"{name} <{address}>"
    return formataddr((name, address))


def fixed_headers(**headers: str) -> bytes:
    """Header lines (bytes, CRLF) folded and RFC 2047-encoded by the stdlib, for
    headers every copy shares. Keyword names use ``_`` for ``-``."""
    common = EmailMessage(policy=policy.SMTP)
    for name, value in headers.items():
        common[name.replace("_", "-")] = value
    return bytes(common).split(b"\r\n\r\n", 1)[0] + b"\r\n"


class Alternative:
    """The multipart/alternative skeleton: a text part and an HTML part."""

    def __init__(self) -> None:
        boundary = f"=_{secrets.token_hex(12)}"
        self.content_type = (
            f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n'
        ).encode()
        self.text_head = f"\r\n--{boundary}\r\n{PART_HEAD.format('plain')}\r\n\r\n".encode()
        self.html_head = f"\r\n--{boundary}\r\n{PART_HEAD.format('html')}\r\n\r\n".encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()

    def message(self, headers: bytes, text_qp: bytes, html_qp: bytes) -> bytes:
        """The whole message: header bytes (without MIME-Version and Content-Type),
        then both bodies, already quoted-printable."""
        parts = (self.text_head, text_qp, self.html_head, html_qp, self.tail)
        return b"".join((headers, self.content_type, *parts))
