"""Understanding "remind me …" requests in the user's timezone.

A small grammar finds the time phrases (a relative delay, a day, a clock time) and
dateparser turns them into dates; what is left is the reminder's text. The rules a
person expects and dateparser alone gets wrong: a bare "at 9" is nine o'clock (not
the current time), a clock time with no day is its next occurrence, and "at 5"
said at 2 pm means 5 pm.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateparser

from mathia.reminders.models import Audience

_PREFIX = re.compile(
    r"^\s*(?:please\s+)?remind\s+(?P<who>me|us|the\s+room|everyone|the\s+team)\b[\s,:]*", re.I
)
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY = re.compile(
    rf"\b(?:(?P<word>today|tonight|tomorrow|yesterday|next\s+week)"
    rf"|(?:on\s+)?(?P<weekday>(?:next\s+|this\s+)?{_WEEKDAY})"
    rf"|(?:on\s+)?(?P<date>\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}(?:\s+\d{{4}})?"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{4}}-\d{{2}}-\d{{2}}))\b",
    re.I,
)
_TIME = re.compile(
    r"\b(?:at\s+)?(?P<named>noon|midday|midnight)\b"
    r"|\bat\s+(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?(?:\s*(?P<ampm>[ap])\.?m\.?)?(?![\w:])"
    r"|\b(?P<h2>\d{1,2})(?:[:.](?P<m2>\d{2}))?\s*(?P<ampm2>[ap])\.?m\b\.?",
    re.I,
)
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty-five": 45,
}
_RELATIVE = re.compile(
    rf"\bin\s+(?P<n>\d+|{'|'.join(_NUMBERS)})\s+(?P<unit>s(?:ec(?:ond)?s?)?|m(?:in(?:ute)?s?)?|h(?:(?:ou)?rs?)?"
    r"|days?|weeks?)\b",
    re.I,
)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# "on WhatsApp" anywhere in the request: also deliver it to the user's WhatsApp number.
_WHATSAPP = re.compile(r"\b(?:on|via|by|over|through)\s+whats\s?app\b", re.I)
_CONNECTOR = re.compile(r"^(?:to|about|that|of|for)\s+|\s+(?:to|about|at|on|in|by)$", re.I)
DEFAULT_HOUR = 9
EVENING_HOUR = 20


class ReminderParseError(ValueError):
    """The request could not become a reminder; the message says what was understood."""


@dataclass(frozen=True)
class ParsedReminder:
    message: str
    due_at: dt.datetime  # in UTC
    audience: Audience
    understood: str  # the time as the user would say it back, in their timezone
    channels: tuple[str, ...] = ()  # delivery beyond the app: ("whatsapp",)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReminderParseError(
            f"unknown timezone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None


def describe(moment: dt.datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%A %d %B %Y at %H:%M} ({tz.key})"


def parse_reminder(text: str, *, now: dt.datetime, tz: ZoneInfo) -> ParsedReminder:
    """Turn "remind me to call John in 10 mins" (and the like) into a message and a due time.

    `now` is an aware datetime; relative phrases count from it and clock times are read in `tz`.
    """
    local_now = now.astimezone(tz)
    rest = text.strip()
    audience = Audience.ME
    if prefix := _PREFIX.match(rest):
        if prefix["who"].lower() not in ("me",):
            audience = Audience.ROOM
        rest = rest[prefix.end() :]

    spans: list[tuple[int, int]] = []
    channels: tuple[str, ...] = ()
    if whatsapp := _WHATSAPP.search(rest):
        spans.append(whatsapp.span())
        channels = ("whatsapp",)
    due: dt.datetime
    if relative := _RELATIVE.search(rest):
        spans.append(relative.span())
        count = relative["n"].lower()
        amount = int(count) if count.isdigit() else _NUMBERS[count]
        due = local_now + dt.timedelta(**{_UNITS[relative["unit"][0].lower()]: amount})
    else:
        day, time = _DAY.search(rest), _TIME.search(rest)
        spans += [m.span() for m in (day, time) if m is not None]
        if day is None and time is None:
            raise ReminderParseError(
                f'I could not find a time in {text!r}: try "in 10 minutes", "at 5pm" or "tomorrow at 9"'
            )
        due = _resolve(day, time, local_now, tz)
    if due <= local_now:
        raise ReminderParseError(f"I understood {describe(due, tz)}, which has already passed")

    message = _strip_spans(rest, spans)
    if not message:
        raise ReminderParseError(f"I understood {describe(due, tz)}, but not what to remind you about")
    return ParsedReminder(
        message=message,
        due_at=due.astimezone(dt.UTC),
        audience=audience,
        understood=describe(due, tz),
        channels=channels,
    )


def _resolve(
    day: re.Match[str] | None, time: re.Match[str] | None, local_now: dt.datetime, tz: ZoneInfo
) -> dt.datetime:
    clock = _clock(time) if time is not None else None
    if day is None:
        assert clock is not None
        hour, minute, ambiguous = clock
        candidates = [(hour, minute)] + ([(hour + 12, minute)] if ambiguous else [])
        for days_ahead in (0, 1):
            date = local_now.date() + dt.timedelta(days=days_ahead)
            for h, m in candidates:
                moment = dt.datetime.combine(date, dt.time(h, m), tzinfo=tz)
                if moment > local_now:
                    return moment
        raise AssertionError("a clock time always comes again within a day")
    date = _date(day, local_now)
    if clock is None:
        hour, minute = (EVENING_HOUR if day["word"] and day["word"].lower() == "tonight" else DEFAULT_HOUR), 0
    else:
        hour, minute, ambiguous = clock
        if ambiguous and day["word"] and day["word"].lower() == "tonight":
            hour += 12
    return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=tz)


def _clock(time: re.Match[str]) -> tuple[int, int, bool]:
    """(hour, minute, whether a 12-hour reading is also possible) or a ReminderParseError."""
    if named := time["named"]:
        return (0, 0, False) if named.lower() == "midnight" else (12, 0, False)
    hour = int(time["h"] or time["h2"])
    minute = int(time["m"] or time["m2"] or 0)
    ampm = (time["ampm"] or time["ampm2"] or "").lower()
    if minute > 59 or hour > (12 if ampm else 23) or (ampm and hour == 0):
        raise ReminderParseError(f"{time.group(0).strip()!r} is not a time of day")
    if ampm:
        return (hour % 12 + (12 if ampm == "p" else 0), minute, False)
    return hour, minute, 1 <= hour <= 11


def _date(day: re.Match[str], local_now: dt.datetime) -> dt.date:
    phrase = (day["word"] or day["weekday"] or day["date"]).lower()
    if phrase == "tonight":
        return local_now.date()
    parsed = dateparser.parse(
        phrase,
        languages=["en"],
        settings={"RELATIVE_BASE": local_now.replace(tzinfo=None), "PREFER_DATES_FROM": "future"},
    )
    if parsed is None:
        raise ReminderParseError(f"I could not read {day.group(0)!r} as a date")
    return parsed.date()


def _strip_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    text = re.sub(r"\s+", " ", text).strip(" ,.;:!")
    previous = None
    while previous != text:
        previous, text = text, _CONNECTOR.sub("", text).strip(" ,.;:!")
    return text
