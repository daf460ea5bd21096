"""What /api/v1 takes and answers, as pydantic models: spectree checks each request
against them and writes the OpenAPI document (GET /api/v1/openapi.json) from them."""

from datetime import UTC, datetime
from typing import Annotated, Literal, cast, overload

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from newsletter.content.models import Digest, Newsletter, Post, TrackingMode
from newsletter.content.posts import CATEGORY_LENGTH
from newsletter.engagement import figures as engagement_figures
from newsletter.subscribers.admin_actions import LAST_PAGE, SEARCH_MAX_LENGTH
from newsletter.subscribers.models import Subscriber, SubscriberStatus


def _no_nul(text: str) -> str:
    # PostgreSQL cannot store a NUL in text: refuse it here rather than fail there.
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    return text


Text = Annotated[StrictStr, AfterValidator(_no_nul)]


def _one_line(text: str) -> str:
    # A name goes into List-Id headers and page titles: no control characters.
    if any(ord(character) < 32 or 127 <= ord(character) < 160 for character in text):
        raise ValueError("must be one line without control characters")
    return text


Line = Annotated[Text, AfterValidator(_one_line)]
SlugText = Annotated[
    Text,
    Field(
        max_length=64,
        description="A newsletter's slug: lower-case letters, digits and hyphens.",
        examples=["weekly"],
    ),
]


@overload
def _as_utc(moment: datetime) -> datetime: ...
@overload
def _as_utc(moment: None) -> None: ...
def _as_utc(moment: datetime | None) -> datetime | None:
    """The database keeps naive UTC; the API says so."""
    return moment.replace(tzinfo=UTC) if moment else None


def _to_naive_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("is out of range in UTC") from None


class Error(BaseModel):
    error: str = Field(description="What went wrong, for a person to read.")


class PageQuery(BaseModel):
    page: int = Field(1, ge=1, le=LAST_PAGE)
    per_page: int = Field(50, ge=1, le=200)


class SubscriberQuery(PageQuery):
    status: SubscriberStatus | None = None
    q: str = Field("", max_length=SEARCH_MAX_LENGTH, description="Part of an address or name.")
    newsletter: Annotated[str, AfterValidator(_no_nul)] | None = Field(
        None, max_length=64, description="A newsletter's slug: only the readers who have it on."
    )


class Page(BaseModel):
    page: int
    pages: int
    total: int


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str
    status: SubscriberStatus
    signup_at: datetime
    signup_source: str
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    newsletters: list[str] = Field(description="The slugs of the newsletters they have on.")
    language: str | None = Field(
        description="The language of their emails, as chosen at sign-up or in their "
        "preferences; null means the service's DEFAULT_LOCALE."
    )

    @classmethod
    def of(cls, subscriber: Subscriber, newsletters: list[str]) -> "SubscriberOut":
        return cls(
            id=subscriber.id,
            email=subscriber.email,
            name=subscriber.name,
            status=SubscriberStatus(subscriber.status),
            signup_at=_as_utc(subscriber.signup_at),
            signup_source=subscriber.signup_source,
            confirmed_at=_as_utc(subscriber.confirmed_at),
            unsubscribed_at=_as_utc(subscriber.unsubscribed_at),
            newsletters=newsletters,
            language=subscriber.locale,
        )


class SubscriberPage(Page):
    items: list[SubscriberOut]


class Consent(BaseModel):
    source: Text = Field(
        min_length=1,
        max_length=32,
        description="Where the reader gave their consent (e.g. 'crm', 'event-2026'); logged.",
    )


class NewSubscriber(BaseModel):
    email: Text
    name: Text = ""
    consent: Consent
    confirmed: StrictBool = Field(
        False,
        description="True: the reader confirmed elsewhere, added confirmed like a CSV import. "
        "False: pending, and sent a confirmation email.",
    )
    newsletters: list[SlugText] | None = Field(
        None,
        description="The newsletters they get (at least one; default: those on by default).",
    )


class SubscriberChange(BaseModel):
    name: Text | None = None
    status: Literal["unsubscribed"] | None = Field(None, description="Only unsubscribing.")
    newsletters: list[SlugText] | None = Field(
        None, description="Exactly the newsletters they get from now on ([]: none)."
    )


class PostOut(BaseModel):
    id: int
    title: str
    link: str
    published_at: datetime

    @classmethod
    def of(cls, post: Post) -> "PostOut":
        return cls(
            id=post.id, title=post.title, link=post.link, published_at=_as_utc(post.published_at)
        )


class PostPage(Page):
    items: list[PostOut]


class DigestOut(BaseModel):
    id: int
    subject: str
    intro: str
    status: str
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    paused_reason: str | None
    post_ids: list[int]
    newsletter: str = Field(description="The slug of the newsletter whose readers get it.")

    @classmethod
    def of(cls, digest: Digest) -> "DigestOut":
        return cls(
            id=digest.id,
            subject=digest.subject,
            intro=digest.intro,
            status=digest.status,
            created_at=_as_utc(digest.created_at),
            scheduled_at=_as_utc(digest.scheduled_at),
            started_at=_as_utc(digest.started_at),
            finished_at=_as_utc(digest.finished_at),
            paused_reason=digest.paused_reason,
            post_ids=[post.id for post in digest.posts],
            newsletter=digest.newsletter.slug,
        )


class Progress(BaseModel):
    pending: int
    sent: int
    failed: int
    skipped: int


class Counted(BaseModel):
    human: int = Field(description="Requests judged a person's.")
    machine: int = Field(
        description="Requests judged a machine's: link scanners, mail proxies, HEAD requests "
        "(the rules are in the engagement docs)."
    )
    human_readers: int = Field(
        description="Copies with at least one person's request: unique readers (for opens "
        "an estimate, once events are folded into totals in more than one go)."
    )

    @classmethod
    def of(cls, counts: engagement_figures.Counts) -> "Counted":
        return cls(human=counts.human, machine=counts.machine, human_readers=counts.human_copies)


class LinkClicks(BaseModel):
    url: str
    human: int
    machine: int


class Engagement(BaseModel):
    """A digest's opens and clicks; all zero for a digest that was not tracked."""

    opens: Counted
    clicks: Counted = Field(description="Clicks on every link, the invisible trap's included.")
    links: list[LinkClicks] = Field(description="Each link of the digest, in order.")

    @classmethod
    def of(cls, found: engagement_figures.Figures) -> "Engagement":
        return cls(
            opens=Counted.of(found.opens),
            clicks=Counted.of(found.clicks),
            links=[
                LinkClicks(url=link.url, human=link.counts.human, machine=link.counts.machine)
                for link in found.links
            ],
        )


class DigestDetail(DigestOut):
    progress: Progress
    engagement: Engagement


class DigestPage(Page):
    items: list[DigestOut]


class NewDigest(BaseModel):
    subject: Text = Field(min_length=1, max_length=200)
    intro: Text = ""
    post_ids: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="The posts to carry (default: every post not yet sent)."
    )
    newsletter: SlugText | None = Field(
        None, description="Whose readers get it (default: the first newsletter's)."
    )


class Schedule(BaseModel):
    at: Annotated[AwareDatetime, AfterValidator(_to_naive_utc)] = Field(
        description="When to send, ISO 8601 with its offset (e.g. 2026-12-24T08:00:00Z)."
    )


class NewWebhook(BaseModel):
    url: Text
    events: list[Text]


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    secret: str = Field(description="The signing secret, shown only in this answer.")


# The values of models.DigestSchedule.
ScheduleName = Literal["off", "daily", "weekly"]


class DigestSchedule(BaseModel):
    """When the newsletter's digest of new feed posts goes out by itself."""

    model_config = ConfigDict(extra="forbid")

    every: ScheduleName = Field(
        description="off: digests only by hand; daily; or weekly on the weekday."
    )
    weekday: StrictInt = Field(0, ge=0, le=6, description="For weekly: Monday is 0.")
    hour: StrictInt = Field(8, ge=0, le=23, description="The hour it goes out, in UTC.")
    category: Line | None = Field(
        None,
        max_length=CATEGORY_LENGTH,
        description="Only posts the feed put in this category; null for every post.",
    )

    @classmethod
    def of(cls, newsletter: Newsletter) -> "DigestSchedule":
        return cls(
            # The column holds one of them; pydantic checks it all the same.
            every=cast(ScheduleName, newsletter.schedule),
            weekday=newsletter.schedule_weekday,
            hour=newsletter.schedule_hour,
            category=newsletter.schedule_category,
        )


TRACKING_DESCRIPTION = (
    "Whether its digests count opens and clicks: off (nothing rewritten, no pixel); "
    "counts (per digest and per link totals, no row that names a reader); per-reader "
    "(who opened and clicked, shown to admins and in the reader's data, erased with them; "
    "readers may refuse it). Machines (link scanners, mail proxies) are counted apart."
)


class NewsletterOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    default_on: bool = Field(description="A sign-up that names no newsletter gets it.")
    public: bool = Field(description="Its sent digests are in the public archive.")
    readers: int = Field(description="Confirmed subscribers who have it on.")
    schedule: DigestSchedule
    tracking: TrackingMode = Field(description=TRACKING_DESCRIPTION)

    @classmethod
    def of(cls, newsletter: Newsletter, readers: int) -> "NewsletterOut":
        return cls(
            id=newsletter.id,
            slug=newsletter.slug,
            name=newsletter.name,
            description=newsletter.description,
            default_on=newsletter.default_on,
            public=newsletter.public,
            readers=readers,
            schedule=DigestSchedule.of(newsletter),
            tracking=TrackingMode(newsletter.tracking),
        )


class NewsletterList(BaseModel):
    items: list[NewsletterOut]


class NewNewsletter(BaseModel):
    slug: Text = Field(
        description="1 to 64 lower-case letters, digits and hyphens; in List-Id headers and "
        "in this API's URLs, and never changed.",
        examples=["weekly"],
    )
    name: Line = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=2000)
    default_on: StrictBool = True
    public: StrictBool = True
    schedule: DigestSchedule | None = None
    tracking: TrackingMode = Field(TrackingMode.OFF, description=TRACKING_DESCRIPTION)


class NewsletterChange(BaseModel):
    # A slug sent here would otherwise be dropped in silence, as if it had changed.
    model_config = ConfigDict(extra="forbid")

    name: Line | None = Field(None, min_length=1, max_length=200)
    description: Text | None = Field(None, max_length=2000)
    default_on: StrictBool | None = None
    public: StrictBool | None = None
    schedule: DigestSchedule | None = None
    tracking: TrackingMode | None = Field(None, description=TRACKING_DESCRIPTION)
