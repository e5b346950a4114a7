"""The user's profile and goals (onboarding), and the prompt text the assistant builds from them."""

from __future__ import annotations

import datetime as dt
from functools import cache
from uuid import UUID
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.errors import InvalidInput, NotFound
from mathia.memory.models import UserGoals, UserProfile
from mathia.memory.schemas import Goals, ProfileIn, ProfileOut

DEFAULT_TIMEZONE = "UTC"
_STYLE_HINTS = {
    "concise": "Keep answers short and to the point.",
    "balanced": "",
    "detailed": "Give thorough answers with explanations and steps.",
}


async def _profile(session: AsyncSession, user_id: UUID) -> UserProfile | None:
    return await session.scalar(select(UserProfile).where(UserProfile.user_id == user_id))


async def _goals(session: AsyncSession, user_id: UUID) -> UserGoals | None:
    return await session.scalar(select(UserGoals).where(UserGoals.user_id == user_id))


def _profile_out(user: User, profile: UserProfile | None) -> ProfileOut:
    if profile is None:
        return ProfileOut(
            display_name=user.display_name, timezone=DEFAULT_TIMEZONE, locale="en", role_title="", whatsapp=""
        )
    return ProfileOut(
        display_name=user.display_name,
        timezone=profile.timezone,
        locale=profile.locale,
        role_title=profile.role_title,
        whatsapp=profile.whatsapp,
    )


async def get_profile(session: AsyncSession, user: User) -> ProfileOut:
    return _profile_out(user, await _profile(session, user.id))


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {DEFAULT_TIMEZONE}


def _check_timezone(name: str) -> str:
    # Only canonical IANA names: ZoneInfo alone would also open arbitrary files under the tz path.
    if name not in _zones():
        raise InvalidInput(f"timezone: unknown time zone {name!r} (use an IANA name such as Europe/Paris)")
    return name


async def put_profile(session: AsyncSession, user: User, data: ProfileIn) -> ProfileOut:
    profile = await _profile(session, user.id)
    if profile is None:
        profile = UserProfile(
            user_id=user.id, timezone=DEFAULT_TIMEZONE, locale="en", role_title="", whatsapp=""
        )
        session.add(profile)
    if data.timezone is not None:
        profile.timezone = _check_timezone(data.timezone)
    if data.locale is not None:
        profile.locale = data.locale.replace("_", "-")
    if data.role_title is not None:
        profile.role_title = data.role_title.strip()
    if data.whatsapp is not None:
        profile.whatsapp = data.whatsapp
    if data.display_name is not None:
        # `user` may come from another session (the auth dependency's); write through this one.
        account = await session.get(User, user.id)
        if account is None:
            raise NotFound("user not found")
        account.display_name = user.display_name = data.display_name.strip()
    await session.flush()
    return _profile_out(user, profile)


async def get_goals(session: AsyncSession, user_id: UUID) -> Goals:
    goals = await _goals(session, user_id)
    if goals is None:
        return Goals()
    return Goals(
        summary=goals.summary,
        focus_areas=list(goals.focus_areas),
        target_date=goals.target_date,
        answer_style=goals.answer_style,  # type: ignore[arg-type]  # stored from a validated Goals
    )


async def put_goals(session: AsyncSession, user_id: UUID, data: Goals) -> Goals:
    goals = await _goals(session, user_id)
    if goals is None:
        goals = UserGoals(user_id=user_id)
        session.add(goals)
    goals.summary = data.summary.strip()
    goals.focus_areas = [area.strip() for area in data.focus_areas]
    goals.target_date = data.target_date
    goals.answer_style = data.answer_style
    await session.flush()
    return await get_goals(session, user_id)


async def user_timezone(session: AsyncSession, user_id: UUID) -> str:
    """The user's IANA time zone, for reminders; UTC until they set one."""
    profile = await _profile(session, user_id)
    return profile.timezone if profile is not None else DEFAULT_TIMEZONE


async def user_context(session: AsyncSession, user_id: UUID, now: dt.datetime | None = None) -> str:
    """A system-prompt section about the user: who they are, where they are, what they want."""
    user = await session.get(User, user_id)
    if user is None:
        return ""
    profile = await _profile(session, user_id)
    goals = await _goals(session, user_id)
    zone = profile.timezone if profile is not None else DEFAULT_TIMEZONE
    local = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(zone))
    lines = [f"You are talking with {user.display_name}."]
    if profile is not None and profile.role_title:
        lines.append(f"Their role: {profile.role_title}.")
    lines.append(f"Their time zone is {zone}; it is {local:%A %Y-%m-%d %H:%M} there.")
    if profile is not None and profile.locale and not profile.locale.lower().startswith("en"):
        lines.append(
            f"Their locale is {profile.locale}: answer in that language unless they write in another."
        )
    if goals is not None:
        if goals.summary:
            lines.append(f"Their goals: {goals.summary}")
        if goals.focus_areas:
            lines.append("They focus on: " + ", ".join(goals.focus_areas) + ".")
        if goals.target_date is not None:
            lines.append(f"They aim to get there by {goals.target_date.isoformat()}.")
        if hint := _STYLE_HINTS.get(goals.answer_style, ""):
            lines.append(hint)
    return "\n".join(lines)
