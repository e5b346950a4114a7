from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from mathia_weather import plugin
from mathia_weather.fake import FakeOpenWeather

from mathia.connectors import ActionError
from mathia.connectors.testing import FakeWorkspace, MemoryCache, call, load_plugin, make_context, serve

KEY = "test-openweather-key"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeOpenWeather, str]]:
    provider = FakeOpenWeather(api_key=KEY, quota=1000)
    with serve(provider.app()) as base_url:
        yield provider, base_url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def connector() -> plugin.WeatherConnector:
    return plugin.WeatherConnector()


def action(name: str) -> plugin.Action:
    return next(a for a in connector().actions if a.name == name)


def test_registers_cleanly() -> None:
    registry = load_plugin(plugin)
    assert set(registry.connectors) == {"weather"}
    assert registry.action("weather", "current") is not None


async def test_current_weather_in_nairobi(fake: tuple[FakeOpenWeather, str], http: httpx.AsyncClient) -> None:
    provider, base_url = fake
    ctx = make_context(
        connector(), FakeWorkspace(), http, credentials={"api_key": KEY}, settings={"base_url": base_url}
    )
    result = await call(action("current"), ctx, {"city": "Nairobi"})
    assert result.text.startswith("Nairobi, KE: 22°C, scattered clouds")
    assert result.data["units"] == "metric"
    assert provider.calls[-1]["q"] == "Nairobi"
    assert provider.calls[-1]["units"] == "metric"


async def test_imperial_units(fake: tuple[FakeOpenWeather, str], http: httpx.AsyncClient) -> None:
    _, base_url = fake
    ctx = make_context(
        connector(),
        FakeWorkspace(),
        http,
        credentials={"api_key": KEY},
        settings={"base_url": base_url, "units": "imperial"},
    )
    result = await call(action("current"), ctx, {"city": "London"})
    assert "50°F" in result.text


async def test_forecast_gives_one_line_per_day(
    fake: tuple[FakeOpenWeather, str], http: httpx.AsyncClient
) -> None:
    provider, base_url = fake
    ctx = make_context(
        connector(), FakeWorkspace(), http, credentials={"api_key": KEY}, settings={"base_url": base_url}
    )
    result = await call(action("forecast"), ctx, {"city": "Nairobi", "days": 2})
    assert result.text.splitlines() == [
        "Forecast for Nairobi:",
        "2026-01-01: 18 to 25°C",
        "2026-01-02: 18 to 25°C",
    ]
    assert provider.calls[-1]["cnt"] == "16"


@pytest.mark.parametrize(
    ("city", "key", "message"),
    [
        ("Atlantis", KEY, "OpenWeather does not know a city called 'Atlantis'"),
        ("Nairobi", "wrong-key", "OpenWeather rejected the workspace's API key; an admin can update it"),
    ],
)
async def test_errors_are_answered_plainly(
    fake: tuple[FakeOpenWeather, str], http: httpx.AsyncClient, city: str, key: str, message: str
) -> None:
    _, base_url = fake
    ctx = make_context(
        connector(), FakeWorkspace(), http, credentials={"api_key": key}, settings={"base_url": base_url}
    )
    with pytest.raises(ActionError) as caught:
        await call(action("current"), ctx, {"city": city})
    assert str(caught.value) == message


async def test_quota_exhausted(http: httpx.AsyncClient) -> None:
    provider = FakeOpenWeather(api_key=KEY, quota=1)
    with serve(provider.app()) as base_url:
        ctx = make_context(
            connector(),
            FakeWorkspace(),
            http,
            credentials={"api_key": KEY},
            settings={"base_url": base_url},
            cache=MemoryCache(),
        )
        await call(action("current"), ctx, {"city": "Nairobi"})
        with pytest.raises(ActionError, match="quota is used up"):
            await call(action("current"), ctx, {"city": "London"})


async def test_unreachable_provider(http: httpx.AsyncClient) -> None:
    with serve(FakeOpenWeather().app()) as base_url:
        pass  # the server is gone: nothing listens on this port any more
    ctx = make_context(
        connector(), FakeWorkspace(), http, credentials={"api_key": KEY}, settings={"base_url": base_url}
    )
    with pytest.raises(ActionError, match="could not be reached"):
        await call(action("current"), ctx, {"city": "Nairobi"})
