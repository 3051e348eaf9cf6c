"""Weather from Open-Meteo (free, no API key): a place name -> coordinates with its geocoding API, then the
forecast API for now, today, tomorrow, the weekend or the next days.

Both URLs, the timeouts and the units come from the config's `tools` section, so tests and self-hosted
Open-Meteo instances point elsewhere. The HTTP client is httpx with Open-Meteo's documented JSON. Every failure
becomes a `ToolError` in plain words ("I can't reach the weather service right now."); nothing is invented.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import httpx

from chatbot.config import ToolsConfig
from chatbot.tools.base import WEEKDAYS, ToolError, ToolResult, date_words, fold

log = logging.getLogger(__name__)

SERVICE = "the weather service"  # how the user hears Open-Meteo named in failures
SOURCE = "Open-Meteo"

When = Literal["now", "today", "tomorrow", "day_after_tomorrow", "weekend", "week",
               "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Topic = Literal["general", "precipitation", "temperature", "wind"]

SATURDAY, SUNDAY = 5, 6  # date.weekday()

# WMO weather interpretation codes (WW) as Open-Meteo returns them in `weather_code`, in plain words.
WMO_DESCRIPTIONS: dict[int, str] = {
    0: "clear sky", 1: "mainly clear", 2: "partly cloudy", 3: "overcast",
    45: "fog", 48: "freezing fog",
    51: "light drizzle", 53: "drizzle", 55: "heavy drizzle",
    56: "light freezing drizzle", 57: "heavy freezing drizzle",
    61: "light rain", 63: "rain", 65: "heavy rain",
    66: "light freezing rain", 67: "heavy freezing rain",
    71: "light snow", 73: "snow", 75: "heavy snow", 77: "snow grains",
    80: "light rain showers", 81: "rain showers", 82: "violent rain showers",
    85: "light snow showers", 86: "heavy snow showers",
    95: "thunderstorms", 96: "thunderstorms with light hail", 99: "thunderstorms with heavy hail",
}

# The forecast API's unit parameters for the config's `units`.
UNIT_PARAMETERS: dict[str, dict[str, str]] = {
    "metric": {"temperature_unit": "celsius", "wind_speed_unit": "kmh", "precipitation_unit": "mm"},
    "imperial": {"temperature_unit": "fahrenheit", "wind_speed_unit": "mph", "precipitation_unit": "inch"},
}
# Units as the API labels them (`current_units`, `daily_units`), in words: "°" is dropped by the speech
# cleaner and "km/h" is read letter by letter, so the facts the model repeats carry words.
UNIT_WORDS = {"°C": "degrees Celsius", "°F": "degrees Fahrenheit", "km/h": "kilometres per hour",
              "mph": "miles per hour", "mp/h": "miles per hour", "m/s": "metres per second", "kn": "knots",
              "mm": "millimetres", "inch": "inches", "%": "percent"}

CURRENT_VARIABLES = ("temperature_2m", "apparent_temperature", "relative_humidity_2m", "weather_code",
                     "wind_speed_10m")
DAILY_VARIABLES = ("weather_code", "temperature_2m_max", "temperature_2m_min", "precipitation_sum",
                   "precipitation_probability_max", "wind_speed_10m_max")


@dataclass(frozen=True)
class WeatherArgs:
    place: str = field(default="", metadata={
        "description": "The city or place, as the user said it, e.g. 'Paris' or 'Springfield, Illinois'. "
                       "Empty if the user named none."})
    when: When = field(default="now", metadata={
        "description": "The time asked about: now, today, tomorrow, day_after_tomorrow, the weekend, the "
                       "week ahead, or a weekday (its next occurrence)."})
    topic: Topic = field(default="general", metadata={
        "description": "What the question is mainly about: precipitation (rain, snow, umbrella), "
                       "temperature (hot, cold, jacket), wind, or general."})


@dataclass(frozen=True)
class Place:
    name: str
    admin1: str  # first-level region ("Illinois"), "" when the geocoder gives none
    country: str
    country_code: str  # ISO 3166-1 alpha-2
    latitude: float
    longitude: float
    timezone: str  # IANA zone, "" when unknown (the forecast is then asked with timezone=auto)
    population: int  # 0 when unknown


@dataclass(frozen=True)
class ResolvedPlace:
    place: Place
    label: str  # "Paris, France"; "Springfield, Missouri, United States" when the region tells them apart
    note: str  # why this one, when several places share the name; "" otherwise


class OpenMeteoWeather:
    """The `get_weather` tool. One httpx client, made on first use, shared by all sessions."""

    name = "get_weather"
    description = ("Current weather and forecast for a place (now, today, tomorrow, the weekend or the next "
                   "days): temperature, rain and snow, wind, and the conditions in words. Use it for any "
                   "question about the weather, rain, umbrellas, heat, cold or wind in a place on Earth.")
    args_type = WeatherArgs

    def __init__(self, config: ToolsConfig):
        self.config = config
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def lead_in(self, args: WeatherArgs) -> str:
        place = args.place or self.config.default_place
        return f"Checking the weather in {place}…" if place else ""

    def run(self, args: WeatherArgs) -> ToolResult:
        wanted = args.place or self.config.default_place
        if not wanted:
            raise ToolError("Which place would you like the weather for? Say, for example, "
                            "\"What's the weather in Paris?\"")
        started = time.monotonic()
        resolved = self.geocode(wanted)
        data = self.forecast(resolved.place)
        try:
            facts, summary = _describe(data, resolved, args)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            log.warning("Open-Meteo forecast for %s was not in the documented shape: %r", resolved.label, e)
            raise ToolError(f"{SERVICE.capitalize()} sent an answer I couldn't read.") from e
        log.info("weather: %r -> %s (%.4f, %.4f), %s, in %.2f s", wanted, resolved.label,
                 resolved.place.latitude, resolved.place.longitude, args.when, time.monotonic() - started)
        return ToolResult(tool=self.name, facts=facts, summary=summary,
                          source=f"Weather for {resolved.label} — {SOURCE}")

    def geocode(self, wanted: str) -> ResolvedPlace:
        """The place a name means: the most populous match, narrowed by a region or country after a comma
        ("Paris, Texas") or, when the whole phrase finds nothing, by its last words ("paris texas")."""
        if "," in wanted:
            name, qualifier = (part.strip() for part in wanted.split(",", 1))
            attempts = [(name, qualifier)]
        else:
            words = wanted.split()
            attempts = [(wanted, "")] + [(" ".join(words[:-k]), " ".join(words[-k:]))
                                         for k in (1, 2) if len(words) > k]
        if wanted.casefold().startswith("the "):  # "the UK", "the Hague": geocoders may know it either way
            attempts.append((wanted[4:], ""))
        for name, qualifier in attempts:
            found = self._search(name)
            narrowed = [r for r in found if _matches(r, qualifier)]
            if narrowed:
                return _choose(name, narrowed, found, qualified=bool(qualifier))
        raise ToolError(f"I couldn't find a place called {wanted}.")

    def forecast(self, place: Place) -> dict:
        params: dict[str, Any] = {
            "latitude": place.latitude, "longitude": place.longitude,
            "current": ",".join(CURRENT_VARIABLES), "daily": ",".join(DAILY_VARIABLES),
            "timezone": place.timezone or "auto", "forecast_days": self.config.forecast_days,
            **UNIT_PARAMETERS[self.config.units],
        }
        return self._get(self.config.weather_forecast_url, params)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _search(self, name: str) -> list[Place]:
        params = {"name": name, "count": self.config.geocoding_count, "language": self.config.geocoding_language,
                  "format": "json"}
        data = self._get(self.config.weather_geocoding_url, params)
        try:
            return [_place(r) for r in data.get("results") or []]  # no match: the API leaves `results` out
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("Open-Meteo geocoding for %r was not in the documented shape: %r", name, e)
            raise ToolError(f"{SERVICE.capitalize()} sent an answer I couldn't read.") from e

    def _get(self, url: str, params: dict[str, Any]) -> dict:
        with _service_errors(self.config.read_timeout_s):
            response = self._http().get(url, params=params)
            if response.status_code != 200:
                log.warning("Open-Meteo %s answered HTTP %d: %s", url, response.status_code, response.text[:200])
                raise ToolError(f"{SERVICE.capitalize()} couldn't answer right now "
                                f"(error {response.status_code}).")
            data = response.json()
        if not isinstance(data, dict):
            raise ToolError(f"{SERVICE.capitalize()} sent an answer I couldn't read.")
        return data

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                timeout = httpx.Timeout(self.config.read_timeout_s, connect=self.config.connect_timeout_s)
                self._client = httpx.Client(timeout=timeout, follow_redirects=True,
                                            headers={"User-Agent": "voice-chatbot (tools: weather)"})
            return self._client


@contextlib.contextmanager
def _service_errors(read_timeout_s: float) -> Iterator[None]:
    """Transport failures in words the user understands; the technical cause stays in the chain and the log."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError, httpx.UnsupportedProtocol) as e:
        log.warning("weather service unreachable: %r", e)
        raise ToolError(f"I can't reach {SERVICE} right now.") from e
    except httpx.TimeoutException as e:
        log.warning("weather service too slow: %r", e)
        raise ToolError(f"{SERVICE.capitalize()} is not answering right now "
                        f"(nothing within {read_timeout_s:g} seconds).") from e
    except httpx.TransportError as e:
        log.warning("weather service connection failed: %r", e)
        raise ToolError(f"{SERVICE.capitalize()} cut the connection. Please try again.") from e
    except ValueError as e:  # the body was not JSON
        raise ToolError(f"{SERVICE.capitalize()} sent an answer I couldn't read.") from e


def _matches(place: Place, qualifier: str) -> bool:
    wanted = fold(qualifier)
    return not wanted or any(fold(f).startswith(wanted) for f in (place.admin1, place.country, place.country_code)
                             if f)


def _place(result: dict) -> Place:
    return Place(name=str(result.get("name") or ""), admin1=str(result.get("admin1") or ""),
                 country=str(result.get("country") or ""), country_code=str(result.get("country_code") or ""),
                 latitude=float(result["latitude"]), longitude=float(result["longitude"]),
                 timezone=str(result.get("timezone") or ""), population=int(result.get("population") or 0))


def _choose(name: str, candidates: list[Place], found: list[Place], qualified: bool) -> ResolvedPlace:
    """The most populous of the candidates called exactly `name` (the geocoder also returns near matches).
    The label names the region too when another place of that name is in the same country; the note says
    why this one, unless the user named the region or country themselves."""
    exact = [p for p in candidates if fold(p.name) == fold(name)] or candidates
    best = max(exact, key=lambda p: p.population)  # max keeps the geocoder's order among equals
    namesakes = [p for p in found if fold(p.name) == fold(best.name)
                 and p.country == best.country and p.admin1 != best.admin1]
    parts = [best.name, best.admin1 if namesakes else "", best.country]
    label = ", ".join(dict.fromkeys(p for p in parts if p))  # "Singapore, Singapore" once
    where = ", ".join(dict.fromkeys(p for p in (best.admin1, best.country) if p and p != best.name))
    note = (f"Several places are called {best.name}; this is the most populous one, in {where}."
            if namesakes and where and not qualified else "")
    return ResolvedPlace(best, label, note)


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # half up: 2.5 -> 3, -2.5 -> -2 (Python's round() gives 2 and -2)


def _words(unit: str) -> str:
    return UNIT_WORDS.get(unit, unit)


def _temperature(value: float, unit: str) -> str:
    n = _round(value)
    return f"{'minus ' if n < 0 else ''}{abs(n)} {_words(unit)}"


def _number(value: float, unit: str, decimals: int = 0) -> str:
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else str(_round(value))
    return f"{text} {_words(unit)}"


def _a(spoken: str) -> str:
    """ "a 60 percent", "an 85 percent", "an 8 percent", "an unknown" """
    first = spoken.split()[0]
    vowel = first[0] in "aeiou" or first in ("8", "11", "18") or (first[:1] == "8" and len(first) in (2, 3))
    return f"{'an' if vowel else 'a'} {spoken}"


def _day_indexes(days: list[dt.date], when: When) -> list[int]:
    if when in ("now", "today"):
        wanted = [0]
    elif when == "tomorrow":
        wanted = [1]
    elif when == "day_after_tomorrow":
        wanted = [2]
    elif when == "week":
        wanted = list(range(len(days)))
    elif when == "weekend":
        wanted = []
        for i, day in enumerate(days):
            if day.weekday() in (SATURDAY, SUNDAY):
                wanted.append(i)
            if day.weekday() == SUNDAY:
                break
    else:
        target = WEEKDAYS.index(when.capitalize())
        wanted = [next((i for i, d in enumerate(days) if d.weekday() == target), len(days))]
    if not wanted or wanted[-1] >= len(days):
        raise ToolError(f"I only have the forecast for the next {len(days)} days.")
    return wanted


@dataclass(frozen=True)
class _Day:
    name: str  # "Today", "Tomorrow", "Saturday"
    date: dt.date
    conditions: str
    high: float
    low: float
    temperature_unit: str
    precipitation: str
    chance: str
    wind: str

    def line(self) -> str:
        relative = f"{self.name}, " if self.name in ("Today", "Tomorrow") else ""
        return (f"{relative}{date_words(self.date)}: {self.conditions}, "
                f"high {_temperature(self.high, self.temperature_unit)}, "
                f"low {_temperature(self.low, self.temperature_unit)}, precipitation {self.precipitation}, "
                f"chance of precipitation {self.chance}, wind up to {self.wind}.")

    def span(self) -> str:
        """ "4 to 10 degrees Celsius", "minus 3 to 2 degrees Celsius" """
        low = _temperature(self.low, self.temperature_unit).removesuffix(" " + _words(self.temperature_unit))
        return f"{low} to {_temperature(self.high, self.temperature_unit)}"


def _days(data: dict, indexes: list[int]) -> list[_Day]:
    daily, units = data["daily"], data["daily_units"]
    dates = [dt.date.fromisoformat(t) for t in daily["time"]]
    out = []
    for i in indexes:
        name = ("Today", "Tomorrow")[i] if i < 2 else WEEKDAYS[dates[i].weekday()]
        chance = daily["precipitation_probability_max"][i]
        out.append(_Day(
            name=name, date=dates[i], conditions=describe_wmo(daily["weather_code"][i]),
            high=float(daily["temperature_2m_max"][i]), low=float(daily["temperature_2m_min"][i]),
            temperature_unit=units["temperature_2m_max"],
            precipitation=_number(daily["precipitation_sum"][i], units["precipitation_sum"], decimals=1),
            chance="unknown" if chance is None else _number(chance, units["precipitation_probability_max"]),
            wind=_number(daily["wind_speed_10m_max"][i], units["wind_speed_10m_max"])))
    return out


def describe_wmo(code: Any) -> str:
    """A WMO weather code in plain words ("partly cloudy"); unknown codes say so rather than guess."""
    if code is None:
        return "conditions unknown"
    return WMO_DESCRIPTIONS.get(int(code), f"weather code {int(code)}")


def _describe(data: dict, resolved: ResolvedPlace, args: WeatherArgs) -> tuple[str, str]:
    """(facts for the prompt, a spoken summary) from a forecast answer."""
    dates = [dt.date.fromisoformat(t) for t in data["daily"]["time"]]
    days = _days(data, _day_indexes(dates, args.when))
    label = resolved.label
    current, cunits = data["current"], data["current_units"]
    local = dt.datetime.fromisoformat(current["time"])
    lines = [f"Weather for {label} from {SOURCE}; local time there {local:%H:%M} on {date_words(local.date())}"
             f" (time zone {data.get('timezone') or resolved.place.timezone or 'unknown'})."]
    if resolved.note:
        lines.append(resolved.note)
    conditions, temperature = (describe_wmo(current["weather_code"]),
                               _temperature(current["temperature_2m"], cunits["temperature_2m"]))
    now = f"{conditions}, {temperature}"
    feels = _temperature(current["apparent_temperature"], cunits["apparent_temperature"])
    wind_now = _number(current["wind_speed_10m"], cunits["wind_speed_10m"])
    if args.when == "now" or days[0].name == "Today":
        # Each number named: "8 degrees (feels like 5 degrees)" let the embedded Qwen2.5 say "5 degrees".
        lines.append(f"Now: {conditions}, temperature {temperature}, feels like {feels}, humidity "
                     f"{_number(current['relative_humidity_2m'], cunits['relative_humidity_2m'])}, "
                     f"wind {wind_now}.")
    lines += [day.line() for day in days]
    return "\n".join(lines), _summary(label, args, now, wind_now, days) + (f" {resolved.note}" if resolved.note else "")


def _summary(label: str, args: WeatherArgs, now: str, wind_now: str, days: list[_Day]) -> str:
    if args.when == "now":
        today = days[0]
        if args.topic == "precipitation":
            return (f"In {label} it is {now} right now, with {_a(today.chance)} chance of precipitation today "
                    f"({today.precipitation}).")
        if args.topic == "wind":
            return f"In {label} the wind is {wind_now} right now, up to {today.wind} today."
        return f"In {label} it is {now} right now, with wind at {wind_now}; today {today.span()}."
    if len(days) == 1:
        day = days[0]
        when = day.name.lower() if day.name in ("Today", "Tomorrow") else f"on {day.name}"
        if args.topic == "precipitation":
            return (f"In {label} {when}: {_a(day.chance)} chance of precipitation, {day.precipitation} expected, "
                    f"and {day.conditions}.")
        if args.topic == "wind":
            return f"In {label} {when}: wind up to {day.wind}, and {day.conditions}."
        return f"In {label} {when}: {day.conditions}, {day.span()}."
    parts = [f"{d.name}, {d.conditions}, {d.span()}, {d.chance} chance of precipitation" for d in days]
    span = "this weekend" if args.when == "weekend" else f"over the next {len(days)} days"
    return f"In {label} {span}: " + "; ".join(parts) + "."
