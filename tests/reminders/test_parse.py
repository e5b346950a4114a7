from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mathia.reminders.models import Audience
from mathia.reminders.parse import ReminderParseError, parse_reminder

# Wednesday 4 March 2026, 14:30 local time in each zone.
CASES = [
    # (text, expected message, expected local due time, audience)
    ("remind me to call John in 10 mins", "call John", (2026, 3, 4, 14, 40), Audience.ME),
    ("remind me at 5pm to check email", "check email", (2026, 3, 4, 17, 0), Audience.ME),
    ("remind me tomorrow at 9 to send the report", "send the report", (2026, 3, 5, 9, 0), Audience.ME),
    ("remind the room on Friday at noon about the demo", "the demo", (2026, 3, 6, 12, 0), Audience.ROOM),
    ("remind me in an hour to stretch", "stretch", (2026, 3, 4, 15, 30), Audience.ME),
    ("remind me at 5 to leave", "leave", (2026, 3, 4, 17, 0), Audience.ME),  # 5 am passed: 5 pm
    ("remind me at 10am to water the plants", "water the plants", (2026, 3, 5, 10, 0), Audience.ME),
    ("remind me tonight at 8 to call mom", "call mom", (2026, 3, 4, 20, 0), Audience.ME),
    ("remind me next monday to file taxes", "file taxes", (2026, 3, 9, 9, 0), Audience.ME),
    ("remind me on 10 March at 3:15pm to pay rent", "pay rent", (2026, 3, 10, 15, 15), Audience.ME),
    ("remind me in 2 days: renew passport", "renew passport", (2026, 3, 6, 14, 30), Audience.ME),
    ("remind me at midnight to sleep", "sleep", (2026, 3, 5, 0, 0), Audience.ME),
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(("text", "message", "local", "audience"), CASES)
def test_phrasings_in_the_users_timezone(
    zone: str, text: str, message: str, local: tuple[int, ...], audience: Audience
) -> None:
    tz = ZoneInfo(zone)
    now = dt.datetime(2026, 3, 4, 14, 30, tzinfo=tz)
    parsed = parse_reminder(text, now=now, tz=tz)
    assert parsed.message == message
    assert parsed.audience == audience
    assert parsed.due_at == dt.datetime(*local, tzinfo=tz).astimezone(dt.UTC)
    assert parsed.due_at.tzinfo == dt.UTC
    assert zone in parsed.understood


@pytest.mark.parametrize(
    ("text", "message", "channels"),
    [
        ("remind me on WhatsApp to call John in 10 mins", "call John", ("whatsapp",)),
        ("remind me to stretch in 5 minutes via whatsapp", "stretch", ("whatsapp",)),
        ("remind me by Whats App tomorrow at 9 to send the report", "send the report", ("whatsapp",)),
        ("remind me to reply to the WhatsApp group in 10 mins", "reply to the WhatsApp group", ()),
    ],
)
def test_asking_for_whatsapp_adds_the_channel(text: str, message: str, channels: tuple[str, ...]) -> None:
    now = dt.datetime(2026, 3, 4, 14, 30, tzinfo=dt.UTC)
    parsed = parse_reminder(text, now=now, tz=ZoneInfo("UTC"))
    assert (parsed.message, parsed.channels) == (message, channels)


def test_same_words_differ_by_timezone() -> None:
    now = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)
    berlin = parse_reminder("remind me at 5pm to go", now=now, tz=ZoneInfo("Europe/Berlin"))
    new_york = parse_reminder("remind me at 5pm to go", now=now, tz=ZoneInfo("America/New_York"))
    assert berlin.due_at == dt.datetime(2026, 3, 4, 16, 0, tzinfo=dt.UTC)
    assert new_york.due_at == dt.datetime(2026, 3, 4, 22, 0, tzinfo=dt.UTC)


def test_across_a_daylight_saving_change() -> None:
    # New York moves its clocks forward on Sunday 8 March 2026.
    tz = ZoneInfo("America/New_York")
    parsed = parse_reminder(
        "remind me on Sunday at 9am to jog", now=dt.datetime(2026, 3, 7, 10, 0, tzinfo=tz), tz=tz
    )
    assert parsed.due_at == dt.datetime(2026, 3, 8, 13, 0, tzinfo=dt.UTC)  # 9:00 EDT


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("remind me to call John", "could not find a time"),
        (
            "remind me today at 9am to stand up",
            "Wednesday 04 March 2026 at 09:00 (Europe/Berlin), which has already passed",
        ),
        ("remind me yesterday at 5pm to eat", "already passed"),
        ("remind me on 1 March 2026 at 10am to vote", "Sunday 01 March 2026 at 10:00"),
        ("remind me at 25:00 to leave", "'at 25:00' is not a time of day"),
        ("remind me in 10 minutes", "not what to remind you about"),
    ],
)
def test_unusable_requests_say_what_was_understood(text: str, says: str) -> None:
    tz = ZoneInfo("Europe/Berlin")
    with pytest.raises(ReminderParseError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_reminder(text, now=dt.datetime(2026, 3, 4, 14, 30, tzinfo=tz), tz=tz)
