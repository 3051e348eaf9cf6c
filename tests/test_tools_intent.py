"""The deterministic intent parser: weather and time questions as people type and say them, and ordinary
questions that must reach the model untouched."""

from __future__ import annotations

import pytest

from chatbot.config import load_config
from chatbot.tools import TimeArgs, Toolbox, WeatherArgs
from chatbot.tools.intent import TIME, WEATHER, parse

# (message, tool, place, when for weather / what for time, topic for weather)
MUST_TRIGGER = [
    ("What's the weather like in Paris tomorrow?", WEATHER, "Paris", "tomorrow", "general"),
    ("whats the weather like in new york tomorrow", WEATHER, "New York", "tomorrow", "general"),
    ("Will it rain in London tomorrow?", WEATHER, "London", "tomorrow", "precipitation"),
    ("is it going to rain today", WEATHER, "", "today", "precipitation"),
    ("Do I need an umbrella tomorrow in Seattle?", WEATHER, "Seattle", "tomorrow", "precipitation"),
    ("should i bring an umbrella to work", WEATHER, "", "today", "precipitation"),
    ("How hot will it be tomorrow in Phoenix?", WEATHER, "Phoenix", "tomorrow", "temperature"),
    ("how hot is dubai today", WEATHER, "Dubai", "today", "temperature"),
    ("how cold is it in moscow", WEATHER, "Moscow", "now", "temperature"),
    ("hows the weather looking for the weekend in barcelona", WEATHER, "Barcelona", "weekend", "general"),
    ("is it going to snow in denver this weekend", WEATHER, "Denver", "weekend", "precipitation"),
    ("will it be sunny in rome on saturday", WEATHER, "Rome", "saturday", "general"),
    ("what's the forecast for the next five days in berlin", WEATHER, "Berlin", "week", "general"),
    ("weather for new york tomorrow", WEATHER, "New York", "tomorrow", "general"),
    ("paris weather", WEATHER, "Paris", "now", "general"),
    ("weather paris tomorrow", WEATHER, "Paris", "tomorrow", "general"),
    ("What's the weather like?", WEATHER, "", "now", "general"),
    ("is it raining in dublin right now", WEATHER, "Dublin", "now", "precipitation"),
    ("any snow expected in aspen this week", WEATHER, "Aspen", "week", "precipitation"),
    ("chance of rain tomorrow in amsterdam", WEATHER, "Amsterdam", "tomorrow", "precipitation"),
    ("whats the temperature in chicago", WEATHER, "Chicago", "now", "temperature"),
    ("how windy is it in chicago", WEATHER, "Chicago", "now", "wind"),
    ("do i need a jacket tonight", WEATHER, "", "today", "temperature"),
    ("so um what's the temperature outside right now", WEATHER, "", "now", "temperature"),
    ("What's the weather in Springfield, Illinois?", WEATHER, "Springfield, Illinois", "now", "general"),
    ("can you check the weather in Rio de Janeiro for me", WEATHER, "Rio de Janeiro", "now", "general"),
    ("what's the weather in St. Louis this weekend", WEATHER, "St. Louis", "weekend", "general"),
    ("whats the weather like in the hague", WEATHER, "The Hague", "now", "general"),
    ("is it sunny in la", WEATHER, "Los Angeles", "now", "general"),
    ("What will the weather be like the day after tomorrow in Oslo", WEATHER, "Oslo", "day_after_tomorrow",
     "general"),
    ("What's the high tomorrow in Austin", WEATHER, "Austin", "tomorrow", "temperature"),
    ("Is it going to be windy tomorrow?", WEATHER, "", "tomorrow", "wind"),
    ("Do I need sunscreen in Miami today?", WEATHER, "Miami", "today", "general"),
    ("What is the weather going to be like in Tokyo next week?", WEATHER, "Tokyo", "week", "general"),
    ("What time is it in Tokyo?", TIME, "Tokyo", "time", None),
    ("what time is it in new york right now", TIME, "New York", "time", None),
    ("whats the time in tokyo", TIME, "Tokyo", "time", None),
    ("what time is it tokyo time", TIME, "Tokyo", "time", None),
    ("hey what time is it over in london", TIME, "London", "time", None),
    ("do you know what time it is in dubai", TIME, "Dubai", "time", None),
    ("current time in los angeles please", TIME, "Los Angeles", "time", None),
    ("what time is it", TIME, "", "time", None),
    ("What time zone is Tokyo in?", TIME, "Tokyo", "zone", None),
    ("which time zone does sydney use", TIME, "Sydney", "zone", None),
    ("what's the time zone of tokyo", TIME, "Tokyo", "zone", None),
    ("What's the date in Sydney?", TIME, "Sydney", "date", None),
    ("what day is it in sydney", TIME, "Sydney", "date", None),
    ("what is today's date", TIME, "", "date", None),
]

MUST_NOT = [
    "why is the sky blue",
    "What causes rain?",
    "write a poem about the weather",
    "how do weather forecasts work",
    "what is the difference between weather and climate",
    "what time does the store open",
    "what time should i go to bed",
    "how much time do i need to boil an egg",
    "what date was the moon landing",
    "I'm feeling under the weather today",
    "tell me a story about a rainy day",
    "how hot is the sun",
    "what is the temperature of boiling water",
    "what is the capital of france",
    "who sang purple rain",
    "what's the best time to visit japan",
    "how many time zones does russia have",
    "explain how time zones work",
    "what's the sales forecast for next quarter",
    "can you recommend a good raincoat brand",
    "i love the sound of rain",
    "what temperature should i cook chicken at",
    "how do you say it is raining in french",
    "what's the time complexity of quicksort",
    "is it hot in here or is it just me",
    "can i take a rain check on dinner",
    "what should i wear in cold weather",
    "how long does it take to fly to tokyo",
    "what is a weather balloon",
]


@pytest.mark.parametrize("text, tool, place, detail, topic", MUST_TRIGGER, ids=[c[0] for c in MUST_TRIGGER])
def test_weather_and_time_questions_trigger_their_tool(text, tool, place, detail, topic):
    intent = parse(text)
    assert intent is not None, text
    if tool == WEATHER:
        assert intent == parse(text) and (intent.tool, intent.args) == (WEATHER, WeatherArgs(place, detail, topic))
    else:
        assert (intent.tool, intent.args) == (TIME, TimeArgs(place, detail))


@pytest.mark.parametrize("text", MUST_NOT)
def test_ordinary_questions_are_left_to_the_model(text):
    assert parse(text) is None


def test_the_weather_on_mars_is_left_to_the_model():
    # Decided: no tool. Open-Meteo forecasts Earth only, and "Mars" would geocode to Mars, Pennsylvania.
    assert parse("what is the weather like on Mars") is None
    assert parse("what time is it on the moon") is None


def test_transcripts_without_punctuation_or_capitals_parse_like_typed_text():
    typed = parse("What's the weather like in New York tomorrow?")
    assert typed == parse("whats the weather like in new york tomorrow")


def test_plan_gives_the_lead_in_and_nothing_when_tools_are_off():
    toolbox = Toolbox(load_config(environ={}).tools)
    call = toolbox.plan("Will it rain in Paris tomorrow?")
    assert (call.tool, call.lead_in) == ("get_weather", "Checking the weather in Paris…")
    assert toolbox.plan("What is the capital of France?") is None
    off = Toolbox(load_config(overrides={"tools.enabled": "false"}, environ={}).tools)
    assert off.plan("Will it rain in Paris tomorrow?") is None and off.schemas() == []


def test_schemas_describe_the_typed_arguments_for_native_calling():
    toolbox = Toolbox(load_config(environ={}).tools)
    weather, clock = toolbox.schemas()
    assert weather["type"] == "function" and weather["function"]["name"] == "get_weather"
    parameters = weather["function"]["parameters"]
    assert parameters["required"] == [] and parameters["additionalProperties"] is False
    assert parameters["properties"]["when"]["enum"][:3] == ["now", "today", "tomorrow"]
    assert clock["function"]["parameters"]["properties"]["what"]["enum"] == ["time", "date", "zone"]
    call = toolbox.call("get_time", '{"place": " Tokyo ", "what": "zone"}')
    assert call.args == TimeArgs("Tokyo", "zone")
