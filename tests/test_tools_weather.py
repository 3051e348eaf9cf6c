"""The weather tool's real client (httpx) over real HTTP, against a local Open-Meteo on 127.0.0.1 that answers
with responses in the documented shape (tests/data/open_meteo/), pointed at by the config's URLs."""

from __future__ import annotations

import socket
import time

import pytest

from chatbot.config import load_config
from chatbot.tools import ToolError, Toolbox, WeatherArgs, grounded_messages, stream_with_tools
from chatbot.tools.weather import OpenMeteoWeather, describe_wmo
from tests.open_meteo_server import OpenMeteoServer
from tests.test_app_http import free_port

CONNECT_TIMEOUT_S = 0.5
READ_TIMEOUT_S = 0.6


@pytest.fixture(scope="module")
def running_server():
    running = OpenMeteoServer().start()
    yield running
    running.stop()


@pytest.fixture()
def server(running_server):
    running_server.delay_s = 0.0
    running_server.requests.clear()
    return running_server


def tools_config(geocoding_url: str, forecast_url: str, **changes: str):
    settings = {"tools.weather_geocoding_url": geocoding_url, "tools.weather_forecast_url": forecast_url,
                "tools.connect_timeout_s": str(CONNECT_TIMEOUT_S), "tools.read_timeout_s": str(READ_TIMEOUT_S),
                **{f"tools.{k}": v for k, v in changes.items()}}
    return load_config(overrides=settings, environ={}).tools


@pytest.fixture()
def weather(server):
    tool = OpenMeteoWeather(tools_config(server.geocoding_url, server.forecast_url))
    yield tool
    tool.close()


def test_current_weather_carries_the_temperature_the_server_returned(weather, server):
    result = weather.run(WeatherArgs(place="Paris"))
    assert result.source == "Weather for Paris, France — Open-Meteo"
    assert ("Now: overcast, temperature 8 degrees Celsius, feels like 5 degrees Celsius, humidity 81 percent"
            in result.facts)
    assert "wind 15 kilometres per hour" in result.facts
    assert result.summary.startswith("In Paris, France it is overcast, 8 degrees Celsius right now")
    # The client asked the documented API: the geocoder's best match, its time zone, the configured units.
    (geo_path, geo), (fc_path, fc) = server.requests
    assert geo_path == "/v1/search" and geo["name"] == "Paris" and geo["count"] == "10"
    assert fc_path == "/v1/forecast" and (fc["latitude"], fc["longitude"]) == ("48.85341", "2.3488")
    assert fc["timezone"] == "Europe/Paris" and fc["temperature_unit"] == "celsius"
    assert fc["wind_speed_unit"] == "kmh" and fc["precipitation_unit"] == "mm" and fc["forecast_days"] == "7"
    assert "temperature_2m" in fc["current"] and "precipitation_probability_max" in fc["daily"]


def test_tomorrow_weekend_and_weekday_pick_their_days(weather):
    tomorrow = weather.run(WeatherArgs(place="Paris", when="tomorrow", topic="precipitation"))
    assert "Tomorrow, Thursday 3 December: light rain, high 12 degrees Celsius, low 7 degrees Celsius" in tomorrow.facts
    assert tomorrow.summary == ("In Paris, France tomorrow: an 85 percent chance of precipitation, 4.7 millimetres "
                                "expected, and light rain.")
    assert "Now:" not in tomorrow.facts  # the question is about tomorrow
    weekend = weather.run(WeatherArgs(place="Paris", when="weekend"))
    assert "Saturday 5 December: clear sky" in weekend.facts
    assert "Sunday 6 December: partly cloudy, high 5 degrees Celsius, low minus 3 degrees Celsius" in weekend.facts
    assert "Friday" not in weekend.facts and "Monday" not in weekend.facts
    assert weekend.summary.startswith("In Paris, France this weekend: Saturday, clear sky, 0 to 6 degrees Celsius")
    monday = weather.run(WeatherArgs(place="Paris", when="monday"))
    assert "Monday 7 December: light snow" in monday.facts
    week = weather.run(WeatherArgs(place="Paris", when="week"))
    assert week.facts.count(" December: ") == 7 and "over the next 7 days" in week.summary


def test_imperial_units_are_asked_for_and_said_in_words(server):
    server.requests.clear()
    tool = OpenMeteoWeather(tools_config(server.geocoding_url, server.forecast_url, units="imperial"))
    result = tool.run(WeatherArgs(place="Paris", when="tomorrow"))
    forecast_query = server.requests[-1][1]
    assert (forecast_query["temperature_unit"], forecast_query["wind_speed_unit"],
            forecast_query["precipitation_unit"]) == ("fahrenheit", "mph", "inch")
    assert "high 53 degrees Fahrenheit, low 44 degrees Fahrenheit, precipitation 0.2 inches" in result.facts
    assert "wind up to 19 miles per hour" in result.facts
    tool.close()


def test_unknown_place_is_said_plainly(weather):
    with pytest.raises(ToolError, match="^I couldn't find a place called Atlantis under the sea.$"):
        weather.run(WeatherArgs(place="Atlantis under the sea"))


def test_ambiguous_place_takes_the_most_populous_and_says_which(weather):
    result = weather.run(WeatherArgs(place="Springfield"))
    assert result.source == "Weather for Springfield, Missouri, United States — Open-Meteo"
    note = "Several places are called Springfield; this is the most populous one, in Missouri, United States."
    assert note in result.facts and result.summary.endswith(note)


def test_a_region_after_the_name_narrows_it(weather, server):
    for spoken in ("Paris, Texas", "paris texas"):
        server.requests.clear()
        result = weather.run(WeatherArgs(place=spoken))
        assert result.source == "Weather for Paris, Texas, United States — Open-Meteo", spoken
        assert server.requests[-1][1]["timezone"] == "America/Chicago"
    # "paris texas" found nothing as a whole, then "paris" narrowed by "texas": two geocoding requests.
    assert [q.get("name") for _, q in server.requests] == ["paris texas", "paris", None]


def test_nothing_listening_says_the_service_is_unreachable_at_once():
    dead = f"http://127.0.0.1:{free_port()}"
    tool = OpenMeteoWeather(tools_config(f"{dead}/v1/search", f"{dead}/v1/forecast"))
    started = time.monotonic()
    with pytest.raises(ToolError, match="^I can't reach the weather service right now.$"):
        tool.run(WeatherArgs(place="Paris"))
    assert time.monotonic() - started < CONNECT_TIMEOUT_S


def test_a_connection_never_accepted_gives_up_at_the_connect_timeout():
    # A listening socket whose backlog is full: the kernel drops further SYNs, as an unreachable network does.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.1)
        tool = OpenMeteoWeather(tools_config(f"http://127.0.0.1:{port}/v1/search",
                                             f"http://127.0.0.1:{port}/v1/forecast"))
        started = time.monotonic()
        with pytest.raises(ToolError, match="^I can't reach the weather service right now.$"):
            tool.run(WeatherArgs(place="Paris"))
        elapsed = time.monotonic() - started
        for filler in fillers:
            filler.close()
    assert CONNECT_TIMEOUT_S * 0.9 <= elapsed < CONNECT_TIMEOUT_S + 1.0


def test_a_slow_server_hits_the_read_timeout(weather, server):
    server.delay_s = READ_TIMEOUT_S * 3
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"^The weather service is not answering right now \(nothing within 0.6 "
                                        r"seconds\).$"):
        weather.run(WeatherArgs(place="Paris"))
    assert READ_TIMEOUT_S * 0.9 <= time.monotonic() - started < READ_TIMEOUT_S + 1.0


def test_an_error_status_is_said_without_details(server):
    tool = OpenMeteoWeather(tools_config(server.geocoding_url, server.forecast_url.replace("/v1/", "/v9/")))
    with pytest.raises(ToolError, match=r"^The weather service couldn't answer right now \(error 404\).$"):
        tool.run(WeatherArgs(place="Paris"))
    tool.close()


def test_no_place_asks_which_or_takes_the_configured_default(server):
    asking = OpenMeteoWeather(tools_config(server.geocoding_url, server.forecast_url))
    assert asking.lead_in(WeatherArgs()) == ""
    with pytest.raises(ToolError, match="^Which place would you like the weather for?"):
        asking.run(WeatherArgs())
    default = OpenMeteoWeather(tools_config(server.geocoding_url, server.forecast_url, default_place="Paris"))
    assert default.lead_in(WeatherArgs()) == "Checking the weather in Paris…"
    assert default.run(WeatherArgs()).source == "Weather for Paris, France — Open-Meteo"


def test_wmo_codes_in_plain_words():
    assert [describe_wmo(c) for c in (0, 2, 45, 63, 75, 82, 95, 99)] == [
        "clear sky", "partly cloudy", "fog", "rain", "heavy snow", "violent rain showers", "thunderstorms",
        "thunderstorms with heavy hail"]
    assert describe_wmo(42) == "weather code 42" and describe_wmo(None) == "conditions unknown"


def test_a_spoken_question_gets_the_lead_in_first_then_an_answer_from_the_facts(server):
    toolbox = Toolbox(tools_config(server.geocoding_url, server.forecast_url))
    messages = [{"role": "system", "content": "You are a voice assistant."},
                {"role": "user", "content": "whats the weather like in paris right now"}]
    seen = []

    def model(prompt: list[dict]) -> list[str]:  # stands in for a generator: repeats the facts it was given
        seen.append(prompt)
        return [line for line in prompt[-1]["content"].splitlines() if line.startswith("Now:")]

    pieces = list(stream_with_tools(toolbox, messages, model, on_tool=lambda call, outcome: seen.append(outcome)))
    assert pieces[0] == "Checking the weather in Paris… "
    assert "8 degrees Celsius" in pieces[1]
    outcome, prompt = seen
    assert outcome.source == "Weather for Paris, France — Open-Meteo"
    assert prompt == grounded_messages(messages, outcome) and messages[-1]["content"].endswith("right now")
    assert prompt[-1]["content"].startswith("whats the weather like in paris right now\n\nBelow, between the lines")
    assert "\n====\nFacts from Weather for Paris, France — Open-Meteo:\n" in prompt[-1]["content"]  # fenced as data
    assert "Use the numbers exactly as given" in prompt[-1]["content"]
    toolbox.close()


def test_a_failed_lookup_is_the_answer_and_the_model_is_not_asked():
    dead = f"http://127.0.0.1:{free_port()}"
    toolbox = Toolbox(tools_config(f"{dead}/v1/search", f"{dead}/v1/forecast"))
    asked = []
    pieces = list(stream_with_tools(toolbox, [{"role": "user", "content": "Will it rain in Paris tomorrow?"}],
                                    lambda prompt: asked.append(prompt) or ["invented"]))
    assert pieces == ["Checking the weather in Paris… ", "I can't reach the weather service right now."]
    assert asked == []
