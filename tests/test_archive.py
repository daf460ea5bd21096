"""The public archive: every sent digest again, as a page without any subscriber's links,
in a list and in an Atom feed; every digest email links to its page."""

import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest

from newsletter.content.models import Digest, DigestStatus
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail import digest as digest_mail
from newsletter.mail.transactional import WelcomeIssue
from tests.helpers import add_subscribers, send_digest
from tests.smtp import html_of, text_of

BASE_URL = "http://127.0.0.1:5000"
ATOM = {"atom": "http://www.w3.org/2005/Atom"}
HOSTILE = "<script>alert(1)</script> \"Quoted\" & 'single' 🎉 שלום עולם \u202eevil"
TOKEN_LINK = re.compile(r"/(unsubscribe|preferences)/")


def add_digest(app, subject, status=DigestStatus.SENT, days_ago=0):
    """A digest as it is after sending (or in another state), without a worker."""
    with app.app_context():
        finished = utcnow() - timedelta(days=days_ago)
        sent = status == DigestStatus.SENT
        digest = Digest(
            subject=subject,
            status=status,
            started_at=finished - timedelta(minutes=5) if sent else None,
            finished_at=finished if sent else None,
        )
        db.session.add(digest)
        db.session.commit()
        return digest.id


def listed_subjects(client, query=""):
    page = client.get(f"/archive{query}")
    assert page.status_code == 200
    return re.findall(r'<a href="/archive/\d+-[a-z0-9-]+">([^<]*)</a>', page.get_data(as_text=True))


def test_each_email_links_to_its_page_which_carries_no_readers_link(app, client, smtp, worker):
    add_subscribers(app, 2)
    titles = ["Council approves the bridge", "Tunnel opens in spring"]
    digest_id = send_digest(app, "Bridges & tunnels", titles)
    messages = smtp.wait_for(2)
    page_url = f"{BASE_URL}/archive/{digest_id}-bridges-tunnels"

    for message in messages:
        text, html = text_of(message), html_of(message)
        assert text.splitlines()[0] == f"View in browser: {page_url}"
        assert f'<a href="{page_url}"' in html
        assert html.index("View in browser") < html.index("<h1")
    own_links = {
        url for m in messages for url in re.findall(r"http\S+/(?:unsub|pref)\S+", text_of(m))
    }
    assert len(own_links) == 4

    page = client.get(page_url.removeprefix(BASE_URL))
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    body = page.get_data(as_text=True)
    assert "Bridges &amp; tunnels" in body
    assert all(title in body for title in titles)
    assert not TOKEN_LINK.search(body)
    assert not any(link in body for link in own_links)
    assert '<a href="/"' in body
    assert "View in browser" not in body
    assert "<script" not in body
    assert listed_subjects(client) == ["Bridges &amp; tunnels"]


def test_the_welcome_email_has_no_page_to_view(app):
    with app.test_request_context():
        html, text = digest_mail.render(WelcomeIssue("Welcome", "Hello", []))
    assert "View in browser" not in html
    assert "View in browser" not in text


def test_the_list_shows_sent_digests_only_newest_first_twenty_a_page(app, client):
    for n in range(25):
        add_digest(app, f"Issue {n}", days_ago=30 - n)
    for status in (DigestStatus.DRAFT, DigestStatus.SCHEDULED, DigestStatus.SENDING):
        add_digest(app, f"Not yet {status}", status=status)

    first = listed_subjects(client)
    assert first == [f"Issue {n}" for n in range(24, 4, -1)]
    assert listed_subjects(client, "?page=1") == first
    assert listed_subjects(client, "?page=2") == [f"Issue {n}" for n in range(4, -1, -1)]
    assert 'href="/archive?page=2"' in client.get("/archive").get_data(as_text=True)
    assert 'href="/archive?page=1"' in client.get("/archive?page=2").get_data(as_text=True)
    for bad in ("3", "0", "-1", "abc", "²", "1.5", "9" * 5000, "99999999999999999999"):
        assert client.get("/archive", query_string={"page": bad}).status_code == 404, bad


def test_an_empty_archive_is_a_page_not_an_error(client):
    assert listed_subjects(client) == []
    assert client.get("/archive?page=2").status_code == 404


def test_a_wrong_slug_redirects_and_what_was_not_sent_is_not_found(app, client):
    digest_id = add_digest(app, "Élection: résultats à 20 h")
    right = f"/archive/{digest_id}-election-resultats-a-20-h"
    assert client.get(right).status_code == 200
    for wrong in (f"/archive/{digest_id}-old-subject", f"/archive/{digest_id}"):
        answer = client.get(wrong)
        assert answer.status_code == 301
        assert answer.headers["Location"] == right
    draft = add_digest(app, "Draft", status=DigestStatus.DRAFT)
    for missing in (f"/archive/{draft}-draft", "/archive/999-x", "/archive/99999999999-x"):
        assert client.get(missing).status_code == 404, missing


def test_the_atom_feed_has_the_latest_twenty(app, client):
    for n in range(22):
        add_digest(app, f"Issue {n}", days_ago=30 - n)
    add_digest(app, "Draft", status=DigestStatus.DRAFT)

    answer = client.get("/archive.atom")
    assert answer.status_code == 200
    assert answer.mimetype == "application/atom+xml"
    feed = ElementTree.fromstring(answer.data)
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    for tag in ("id", "title", "updated", "author/atom:name"):
        assert feed.findtext(f"atom:{tag}", namespaces=ATOM)
    alternate = feed.find("atom:link[@rel='alternate']", ATOM)
    assert alternate.get("href") == f"{BASE_URL}/archive"
    entries = feed.findall("atom:entry", ATOM)
    assert [e.findtext("atom:title", namespaces=ATOM) for e in entries] == [
        f"Issue {n}" for n in range(21, 1, -1)
    ]
    newest = entries[0]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", newest.findtext("atom:updated", namespaces=ATOM)
    )
    assert feed.findtext("atom:updated", namespaces=ATOM) == newest.findtext(
        "atom:updated", namespaces=ATOM
    )
    assert newest.findtext("atom:id", namespaces=ATOM)
    assert newest.findtext("atom:summary", namespaces=ATOM)
    link = newest.find("atom:link[@rel='alternate']", ATOM).get("href")
    assert link.startswith(f"{BASE_URL}/archive/")
    assert client.get(link.removeprefix(BASE_URL)).status_code == 200


def test_an_empty_feed_is_still_valid(client):
    feed = ElementTree.fromstring(client.get("/archive.atom").data)
    assert feed.findtext("atom:updated", namespaces=ATOM)
    assert feed.findall("atom:entry", ATOM) == []


@pytest.mark.parametrize("subject", [HOSTILE, "🎉🎉", "שלום עולם", "bell \x07 in it"])
def test_hostile_subjects_are_escaped_in_the_page_the_list_and_the_feed(app, client, subject):
    digest_id = add_digest(app, subject)
    pages = client.get("/archive").get_data(as_text=True)
    page_path = re.search(rf'href="(/archive/{digest_id}-[a-z0-9-]+)"', pages)[1]
    page = client.get(page_path).get_data(as_text=True)
    for body in (pages, page):
        # Quotes may stay as they are in text (css_inline writes them so); no tag may.
        assert "<script" not in body
    if subject == HOSTILE:
        assert page_path == f"/archive/{digest_id}-script-alert-1-script-quoted-single-evil"
        for body in (pages, page):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
            assert "🎉 שלום עולם" in body

    feed = ElementTree.fromstring(client.get("/archive.atom").data)
    entry = feed.find("atom:entry", ATOM)
    assert entry.findtext("atom:title", namespaces=ATOM) == subject.replace("\x07", "")
    assert entry.find("atom:link", ATOM).get("href") == BASE_URL + page_path
