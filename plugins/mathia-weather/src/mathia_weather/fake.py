"""A fake OpenWeather API for tests: the endpoints, status codes and error bodies of the
real one, a few known cities, and a per-minute quota. Serve it with
`mathia.connectors.testing.serve(app)` and point the `base_url` setting at it."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get

CITIES: dict[str, dict[str, Any]] = {
    "nairobi": {
        "name": "Nairobi",
        "country": "KE",
        "lat": -1.2833,
        "lon": 36.8167,
        "kelvin": 295.15,
        "description": "scattered clouds",
        "humidity": 60,
    },
    "london": {
        "name": "London",
        "country": "GB",
        "lat": 51.5085,
        "lon": -0.1257,
        "kelvin": 283.15,
        "description": "light rain",
        "humidity": 81,
    },
}


@dataclass
class FakeOpenWeather:
    api_key: str = "test-openweather-key"
    quota: int = 60
    calls: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Litestar:
        return Litestar([self._weather_handler(), self._forecast_handler()])

    def _check(self, query: dict[str, str]) -> Response[Any] | None:
        with self.lock:
            self.calls.append(query)
            over = len(self.calls) > self.quota
        if query.get("appid") != self.api_key:
            return Response(
                {
                    "cod": 401,
                    "message": "Invalid API key. Please see "
                    "https://openweathermap.org/faq#error401 for more info.",
                },
                status_code=401,
            )
        if over:
            return Response(
                {
                    "cod": 429,
                    "message": "Your account is temporary blocked due to exceeding of "
                    "requests limitation of your subscription type.",
                },
                status_code=429,
            )
        return None

    def _weather_handler(self) -> Any:
        @get("/weather", sync_to_thread=False)
        def weather(request: Request[Any, Any, Any]) -> Response[Any]:
            query = dict(request.query_params)
            refused = self._check(query)
            if refused:
                return refused
            city = _find(query)
            if city is None:
                return Response({"cod": "404", "message": "city not found"}, status_code=404)
            units = query.get("units", "standard")
            return Response(
                {
                    "coord": {"lon": city["lon"], "lat": city["lat"]},
                    "weather": [
                        {"id": 802, "main": "Clouds", "description": city["description"], "icon": "03d"}
                    ],
                    "main": {
                        "temp": _temp(city["kelvin"], units),
                        "feels_like": _temp(city["kelvin"] - 1, units),
                        "humidity": city["humidity"],
                        "pressure": 1019,
                    },
                    "wind": {"speed": 3.1, "deg": 40},
                    "sys": {"country": city["country"]},
                    "name": city["name"],
                    "cod": 200,
                }
            )

        return weather

    def _forecast_handler(self) -> Any:
        @get("/forecast", sync_to_thread=False)
        def forecast(request: Request[Any, Any, Any]) -> Response[Any]:
            query = dict(request.query_params)
            refused = self._check(query)
            if refused:
                return refused
            city = next(
                (
                    c
                    for c in CITIES.values()
                    if abs(c["lat"] - float(query.get("lat", 999))) < 0.01
                    and abs(c["lon"] - float(query.get("lon", 999))) < 0.01
                ),
                None,
            )
            if city is None:
                return Response({"cod": "400", "message": "wrong latitude"}, status_code=400)
            units, count = query.get("units", "standard"), int(query.get("cnt", 40))
            start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            items = []
            for i in range(count):
                at = start + dt.timedelta(hours=3 * i)
                kelvin = city["kelvin"] + (i % 8) - 4  # a daily swing of 8 degrees
                items.append(
                    {
                        "dt": int(at.timestamp()),
                        "main": {"temp": _temp(kelvin, units)},
                        "weather": [{"description": city["description"]}],
                        "dt_txt": at.strftime("%Y-%m-%d %H:%M:%S"),
                    }
                )
            return Response(
                {
                    "cod": "200",
                    "message": 0,
                    "cnt": count,
                    "list": items,
                    "city": {"name": city["name"], "country": city["country"]},
                }
            )

        return forecast


def _find(query: dict[str, str]) -> dict[str, Any] | None:
    name = query.get("q", "").split(",")[0].strip().lower()
    return CITIES.get(name)


def _temp(kelvin: float, units: str) -> float:
    if units == "metric":
        return round(kelvin - 273.15, 2)
    if units == "imperial":
        return round((kelvin - 273.15) * 9 / 5 + 32, 2)
    return kelvin
