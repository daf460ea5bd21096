"""A tracked digest's figures (issue 19): its admin page, the CSV of its links, the API's
``engagement`` and the dashboard's rates show people's opens and clicks, with machines'
beside them, for a digest sent through the worker and clicked over HTTP."""

import csv
import io
import re

from newsletter.content import digests, posts
from newsletter.content.models import Newsletter
from newsletter.extensions import db
from tests.helpers import bearer, wait_until_events_written
from tests.smtp import html_of
from tests.tracked_digests import (
    BROWSER,
    OPEN_LINK,
    article_site,
    path_of,
    send_digest,
    tracked_links,
)

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


def figure(page, name):
    """The number or rate a digest's page shows as ``data-figure="name"``."""
    return re.search(rf'data-figure="{name}">([^<]*)<', page)[1]


def a_person_and_a_scanner(app, client, smtp, origin):
    """A digest of two articles to Ann and Bob: Ann opens it and follows one article;
    Bob's mail gateway checks every link (the trap among them) and his mail provider's
    proxy fetches the images."""
    app.config["TRACKING_MIN_SECONDS"] = 0
    subscribers = ("ann@example.org", "bob@example.org")
    digest_id, copies = send_digest(app, smtp, "counts", origin, subscribers=subscribers)
    ann, bob = copies["ann@example.org"], copies["bob@example.org"]
    article = tracked_links(ann)[1]
    clicked = client.get(path_of(article), headers={"User-Agent": BROWSER})
    assert clicked.status_code == 302
    pixel = path_of(OPEN_LINK.search(html_of(ann))[0])
    assert client.get(pixel, headers={"User-Agent": BROWSER}).status_code == 200
    for link in tracked_links(bob):
        assert client.head(path_of(link), headers={"User-Agent": BROWSER}).status_code == 302
    pixel = path_of(OPEN_LINK.search(html_of(bob))[0])
    assert client.get(pixel, headers={"User-Agent": GMAIL_PROXY}).status_code == 200
    wait_until_events_written(app)
    return digest_id, clicked.headers["Location"]


def test_a_digests_figures_on_its_page_in_its_csv_the_api_and_the_dashboard(
    app, admin_client, smtp, worker
):
    with article_site() as origin:
        digest_id, followed = a_person_and_a_scanner(app, admin_client, smtp, origin)
    other = f"{origin}/council" if followed == f"{origin}/harbour" else f"{origin}/harbour"

    page = admin_client.get(f"/admin/digests/{digest_id}").get_data(as_text=True)
    assert "Of 2 copies delivered" in page
    # Ann is one person who opened and clicked; Bob's copy was only ever seen by machines.
    assert figure(page, "human-opens") == "1"
    assert figure(page, "machine-opens") == "1"
    assert figure(page, "open-rate") == "50.0%"
    assert figure(page, "human-clicks") == "1"
    assert figure(page, "click-rate") == "50.0%"
    assert figure(page, "machine-clicks") == "3"
    # The preview draws the article Ann followed as all of people's clicks.
    preview = re.search(r'id="engagement-preview"\s+srcdoc="([^"]*)"', page)[1]
    assert "100% of clicks (1)" in preview
    assert "0% of clicks (0)" in preview

    answer = admin_client.get(f"/admin/digests/{digest_id}/links.csv")
    assert answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["position", "url", "human_clicks", "machine_clicks", "human_readers"]
    by_url = {row[1]: row[2:] for row in rows[1:]}
    assert by_url == {followed: ["1", "1", "1"], other: ["0", "1", "0"]}

    answer = admin_client.get(f"/api/v1/digests/{digest_id}", headers=bearer(app, "digests:read"))
    engagement = answer.get_json()["engagement"]
    assert engagement["opens"] == {"human": 1, "machine": 1, "human_readers": 1}
    # Every machine click counts, the trap's included.
    assert engagement["clicks"] == {"human": 1, "machine": 3, "human_readers": 1}
    assert sorted(engagement["links"], key=lambda link: link["url"] != followed) == [
        {"url": followed, "human": 1, "machine": 1},
        {"url": other, "human": 0, "machine": 1},
    ]

    dashboard = admin_client.get("/admin/").get_data(as_text=True)
    rates = dashboard.split('id="engagement-rates"', 1)[1].split("</table>", 1)[0]
    assert "This week" in rates
    assert re.search(r"<td>2</td><td>50\.0%</td><td>50\.0%</td>\s*<td>1</td><td>3</td>", rates)


def test_a_digest_not_tracked_says_so_and_has_no_figures(app, admin_client):
    with app.app_context():
        posts.save_post(None, "Monday", "https://news.example/monday", "")
        digest_id = digests.create_digest("Monday").id
        newsletter_id = db.session.get(Newsletter, 1).id
    page = admin_client.get(f"/admin/digests/{digest_id}").get_data(as_text=True)
    assert "Not tracked" in page
    assert f"/admin/newsletters/{newsletter_id}/tracking" in page
    assert 'data-figure="' not in page
    answer = admin_client.get(f"/api/v1/digests/{digest_id}", headers=bearer(app, "digests:read"))
    assert answer.get_json()["engagement"] == {
        "opens": {"human": 0, "machine": 0, "human_readers": 0},
        "clicks": {"human": 0, "machine": 0, "human_readers": 0},
        "links": [],
    }
    rows = admin_client.get(f"/admin/digests/{digest_id}/links.csv").get_data(as_text=True)
    assert rows.splitlines() == ["position,url,human_clicks,machine_clicks,human_readers"]
    dashboard = admin_client.get("/admin/").get_data(as_text=True)
    assert "No tracked digest sent yet" in dashboard


def test_the_csv_needs_a_login(client):
    answer = client.get("/admin/digests/1/links.csv")
    assert answer.status_code == 302
    assert "/admin/login" in answer.headers["Location"]


def test_the_csv_of_no_digest_is_a_404(admin_client):
    assert admin_client.get("/admin/digests/999/links.csv").status_code == 404
