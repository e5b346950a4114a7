"""OpenWeather: current weather and a 5-day forecast by city."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
import msgspec

from mathia.connectors import Action, ActionContext, ActionError, ActionResult, Field, hookimpl

Units = Literal["metric", "imperial", "standard"]
_SYMBOL = {"metric": "°C", "imperial": "°F", "standard": " K"}
_SPEED = {"metric": "m/s", "imperial": "mph", "standard": "m/s"}
City = Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="city name, optionally ',CC'")]


class CurrentParams(msgspec.Struct, forbid_unknown_fields=True):
    city: City
    units: Units | None = None


class ForecastParams(msgspec.Struct, forbid_unknown_fields=True):
    city: City
    days: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    units: Units | None = None


async def _get(ctx: ActionContext, path: str, params: dict[str, Any], city: str) -> dict[str, Any]:
    query = {**params, "appid": ctx.credentials["api_key"]}
    try:
        response = await ctx.http.get(
            f"{ctx.settings['base_url'].rstrip('/')}/{path}", params=query, timeout=10
        )
    except httpx.HTTPError:
        raise ActionError("OpenWeather could not be reached; try again shortly") from None
    # Branch on the HTTP status: the body's `cod` is a number on some errors and a string on others.
    if response.status_code == 401:
        raise ActionError("OpenWeather rejected the workspace's API key; an admin can update it")
    if response.status_code == 404:
        raise ActionError(f"OpenWeather does not know a city called {city!r}")
    if response.status_code == 429:
        raise ActionError("the OpenWeather quota is used up for now; try again in a minute")
    if response.status_code != 200:
        raise ActionError(f"OpenWeather answered with status {response.status_code}")
    body: dict[str, Any] = response.json()
    return body


def _units(ctx: ActionContext, asked: Units | None) -> str:
    units = asked or ctx.settings.get("units") or "metric"
    if units not in _SYMBOL:
        raise ActionError(f"the workspace's units setting {units!r} is not one of metric, imperial, standard")
    return units


async def current(ctx: ActionContext, params: CurrentParams) -> ActionResult:
    units = _units(ctx, params.units)
    body = await _get(ctx, "weather", {"q": params.city, "units": units}, params.city)
    place = f"{body['name']}, {body.get('sys', {}).get('country', '')}".rstrip(", ")
    main, wind = body["main"], body.get("wind", {})
    description = body["weather"][0]["description"] if body.get("weather") else "no description"
    text = (
        f"{place}: {round(main['temp'])}{_SYMBOL[units]}, {description} "
        f"(feels like {round(main['feels_like'])}{_SYMBOL[units]}, humidity {main['humidity']}%, "
        f"wind {wind.get('speed', 0)} {_SPEED[units]})"
    )
    return ActionResult(
        text,
        {
            "city": body["name"],
            "temp": main["temp"],
            "units": units,
            "description": description,
            "coord": body["coord"],
        },
    )


async def forecast(ctx: ActionContext, params: ForecastParams) -> ActionResult:
    units = _units(ctx, params.units)
    # The forecast endpoint takes coordinates: the current-weather call resolves the city.
    here = await _get(ctx, "weather", {"q": params.city, "units": units}, params.city)
    body = await _get(
        ctx,
        "forecast",
        {"lat": here["coord"]["lat"], "lon": here["coord"]["lon"], "units": units, "cnt": params.days * 8},
        params.city,
    )
    days: dict[str, list[float]] = {}
    for item in body["list"]:
        days.setdefault(item["dt_txt"][:10], []).append(item["main"]["temp"])
    lines = [
        f"{day}: {round(min(t))} to {round(max(t))}{_SYMBOL[units]}"
        for day, t in list(days.items())[: params.days]
    ]
    return ActionResult(
        f"Forecast for {here['name']}:\n" + "\n".join(lines),
        {
            "city": here["name"],
            "units": units,
            "days": [{"date": d, "min": min(t), "max": max(t)} for d, t in days.items()],
        },
    )


@dataclass(frozen=True)
class WeatherConnector:
    name: str = "weather"
    version: str = "0.1.0"
    description: str = "Current weather and forecasts from OpenWeather"
    actions: Sequence[Action] = (
        Action(
            "current",
            "Current weather in a city",
            CurrentParams,
            current,
            cache_ttl=600,
            timeout=15,
            phrases=(
                r"weather(?: like)? (?:in|for|at) (?P<city>[^\W\d][\w .,'-]*)$",
                r"(?:is it|will it) (?:rain|raining|sunny|hot|cold) in (?P<city>[^\W\d][\w .,'-]*)$",
            ),
        ),
        Action(
            "forecast",
            "Weather forecast for the next days in a city",
            ForecastParams,
            forecast,
            cache_ttl=1800,
            timeout=20,
            phrases=(r"forecast (?:in|for) (?P<city>[^\W\d][\w .,'-]*)$",),
        ),
    )
    credentials: Sequence[Field] = (Field("api_key", "OpenWeather API key"),)
    settings: Sequence[Field] = field(
        default=(
            Field("units", "metric, imperial or standard", required=False, default="metric"),
            Field(
                "base_url",
                "OpenWeather API base URL",
                required=False,
                default="https://api.openweathermap.org/data/2.5",
            ),
        )
    )
    permissions: Sequence[str] = ("send city names to OpenWeather",)


@hookimpl
def mathia_connectors() -> list[WeatherConnector]:
    return [WeatherConnector()]
