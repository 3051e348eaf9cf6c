"""Weather and time questions through whole turns on the embedded models: the lead-in is spoken while the tool
runs, the answer's numbers are the tool's, the chat shows which tool answered, and failures are said plainly."""

import dataclasses

import pytest

from chatbot.session import TOOL_MARK
from chatbot.tools import Toolbox
from chatbot.turn import TurnOptions
from tests.media import speak, wer, write_wav
from tests.open_meteo_server import OpenMeteoServer
from tests.test_app_http import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weather_server():
    server = OpenMeteoServer().start()
    yield server
    server.stop()


@pytest.fixture()
def with_tools(assistant, cfg):
    """The assistant with tools pointed at these Open-Meteo URLs."""
    toolboxes = []

    def make(geocoding_url: str, forecast_url: str, **changes):
        tools = dataclasses.replace(cfg.tools, weather_geocoding_url=geocoding_url, weather_forecast_url=forecast_url,
                                    connect_timeout_s=1.0, read_timeout_s=2.0, **changes)
        toolboxes.append(Toolbox(tools))
        assistant.engines = dataclasses.replace(assistant.engines, toolbox=toolboxes[-1])
        return assistant
    yield make
    for toolbox in toolboxes:
        toolbox.close()


def test_a_spoken_weather_question_speaks_the_lead_in_first_and_the_servers_temperature(
        with_tools, weather_server, piper, tmp_path):
    assistant = with_tools(weather_server.geocoding_url, weather_server.forecast_url)
    weather_server.delay_s = 1.0  # a service that takes a second: the lead-in is heard meanwhile
    question = write_wav(tmp_path / "weather.wav", *speak(piper, "What is the weather like in Paris right now?"))
    updates = list(assistant.voice_turn(assistant.new_session(), question))
    first_speech = next(u for u in updates if u.speech)
    assert first_speech.messages[-1]["content"] == "Checking the weather in Paris… "  # spoken before the facts
    final = updates[-1]
    assert final.stage == "done" and final.audio is not None
    transcript = final.messages[0]["content"][0]
    assert wer("What is the weather like in Paris right now?", transcript) <= 0.2
    folded, answer = final.messages[1], final.messages[2]
    assert folded["metadata"]["title"] == TOOL_MARK + "Weather for Paris, France — Open-Meteo"
    assert "8 degrees Celsius" in folded["content"]
    text = answer["content"][0]
    assert text.startswith("Checking the weather in Paris… ") and "8 degrees Celsius" in text  # the server's figure
    assert any(path == "/v1/forecast" for path, _query in weather_server.requests)


def test_a_time_question_is_answered_from_the_time_zone_database(with_tools, weather_server):
    assistant = with_tools(weather_server.geocoding_url, weather_server.forecast_url)
    session = assistant.new_session()
    final = list(assistant.text_turn(session, "What time zone is Tokyo in?", TurnOptions(speak=False)))[-1]
    assert final.stage == "done"
    assert "Asia/Tokyo" in final.messages[-1]["content"]
    assert session.exchanges[0].reply.tool.source.startswith("Time for Tokyo, Japan")


def test_no_weather_service_is_said_plainly_and_nothing_is_invented(with_tools):
    dead = f"http://127.0.0.1:{free_port()}"
    assistant = with_tools(f"{dead}/v1/search", f"{dead}/v1/forecast")
    session = assistant.new_session()
    final = list(assistant.text_turn(session, "Will it rain in Paris tomorrow?", TurnOptions(speak=False)))[-1]
    assert final.stage == "done"
    answer = final.messages[-1]["content"]
    assert "can't reach the weather service" in answer and "degrees" not in answer
    assert session.exchanges[0].reply.tool is None  # no facts, no folded source


def test_an_ordinary_question_does_not_touch_the_tools(with_tools, weather_server):
    assistant = with_tools(weather_server.geocoding_url, weather_server.forecast_url)
    weather_server.requests.clear()
    final = list(assistant.text_turn(assistant.new_session(), "Name a colour.", TurnOptions(speak=False)))[-1]
    assert final.stage == "done" and weather_server.requests == []
    assert len(final.messages) == 2  # no folded tool detail
