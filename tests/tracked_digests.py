"""A tracked digest as the engagement tests send it: two articles on a news site served
on this machine, sent through the worker to subscribers of a newsletter tracked as asked;
and the tracked links its copies carry."""

import re
from contextlib import contextmanager

from harness import free_port, served
from newsletter.content.models import Newsletter, Post
from newsletter.extensions import db
from tests.helpers import add_subscriber, wait_until_sent
from tests.smtp import html_of

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
TRACKED_LINK = re.compile(r"https?://[^\s\"<>]+/r/[A-Za-z0-9_.-]+")
OPEN_LINK = re.compile(r"https?://[^\s\"<>]+/o/[A-Za-z0-9_.-]+")
ARTICLES = {"harbour": "The harbour path grows", "council": "The council votes"}


@contextmanager
def article_site():
    """The news site's articles, on a server of this machine: a redirect lands here."""

    def article(environ, start_response):
        title = ARTICLES.get(environ["PATH_INFO"].strip("/"), "Not found")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [f"<!doctype html><title>{title}</title><h1>{title}</h1>".encode()]

    with served(article, free_port()) as origin:
        yield origin


def send_digest(app, smtp, tracking, article_origin, subscribers=("reader@example.org",)):
    """A digest of two articles, for a newsletter tracked as ``tracking``, sent to
    ``subscribers`` through the worker: its id and each subscriber's copy."""
    with app.app_context():
        db.session.get(Newsletter, 1).tracking = tracking
        db.session.add_all(
            Post(guid=slug, link=f"{article_origin}/{slug}", title=title, summary_html="<p>…</p>")
            for slug, title in ARTICLES.items()
        )
        db.session.commit()
    for subscriber in subscribers:
        add_subscriber(app, subscriber, [1])
    made = app.test_cli_runner().invoke(args=["send-digest", "--subject", "This week"])
    digest_id = int(made.output.strip())
    smtp.wait_for(len(subscribers))
    wait_until_sent(app, digest_id)
    return digest_id, {subscriber: smtp.messages_to(subscriber)[0] for subscriber in subscribers}


def tracked_links(message):
    """The copy's click links, as its HTML carries them (the trap among them)."""
    return list(dict.fromkeys(TRACKED_LINK.findall(html_of(message))))


def path_of(url):
    return "/" + url.split("/", 3)[3]
