"""The openai engine's native tool calling, over real HTTP: a scripted chat-completions server that streams
a tool call (tests/chat_server.py) and the local Open-Meteo (tests/open_meteo_server.py), both on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from chatbot.config import load_config
import dataclasses

from chatbot.llm.base import GenerationSettings
from chatbot.llm.openai_engine import OpenAIChatGenerator
from chatbot.tools import ToolError, Toolbox
from tests.chat_server import ChatServer
from tests.open_meteo_server import OpenMeteoServer
from tests.test_app_http import free_port

SETTINGS = GenerationSettings(max_new_tokens=64, temperature=0.0, top_p=1.0, repetition_penalty=1.0)
QUESTION = [{"role": "system", "content": "You are a voice assistant."},
            {"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def weather_server():
    running = OpenMeteoServer().start()
    yield running
    running.stop()


@pytest.fixture()
def chat():
    running = ChatServer().start()
    yield running
    running.stop()


def toolbox_for(geocoding_url: str, forecast_url: str, native: bool = True) -> Toolbox:
    return Toolbox(load_config(overrides={"tools.weather_geocoding_url": geocoding_url,
                                          "tools.weather_forecast_url": forecast_url,
                                          "tools.connect_timeout_s": "0.5", "tools.read_timeout_s": "2",
                                          "tools.native_calling": str(native).lower()}, environ={}).tools)


def generator_for(chat: ChatServer, toolbox: Toolbox | None) -> OpenAIChatGenerator:
    llm = dataclasses.replace(load_config(environ={}).llm, openai_base_url=chat.base_url, model="auto",
                              openai_connect_timeout_s=1, openai_read_timeout_s=5, openai_api_key="")
    return OpenAIChatGenerator(llm, SETTINGS, toolbox=toolbox)


def test_the_model_calls_the_weather_tool_and_answers_from_its_facts(chat, weather_server):
    generator = generator_for(chat, toolbox_for(weather_server.geocoding_url, weather_server.forecast_url))
    assert generator.calls_tools
    heard = []
    pieces = list(generator.stream(QUESTION, on_tool=lambda call, outcome: heard.append((call, outcome))))
    assert pieces[0] == "Checking the weather in Paris… "  # said before the tool ran
    assert "".join(pieces[1:]).strip() == ("Right now in Paris: overcast, temperature 8 degrees Celsius, feels like "
                                           "5 degrees Celsius, humidity 81 percent, wind 15 kilometres per hour.")
    (call, result), = heard
    assert call.tool == "get_weather" and result.source == "Weather for Paris, France — Open-Meteo"
    offered, answered = chat.bodies
    assert [t["function"]["name"] for t in offered["tools"]] == ["get_weather", "get_time"]
    assert offered["tool_choice"] == "auto" and offered["stream"] is True
    assistant, tool = answered["messages"][-2:]
    assert assistant["tool_calls"] == [{"id": "call_abc123", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"place": "Paris", "when": "now"}'}}]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_abc123"
    assert "Now: overcast, temperature 8 degrees Celsius" in tool["content"]
    assert "tools" in answered  # a second call would be allowed; the model chose to answer


def test_a_server_that_refuses_tools_gets_the_parser_instead(chat, weather_server):
    chat.refuse_tools = True
    generator = generator_for(chat, toolbox_for(weather_server.geocoding_url, weather_server.forecast_url))
    pieces = list(generator.stream(QUESTION))
    assert pieces[0] == "Checking the weather in Paris… " and "8 degrees Celsius" in "".join(pieces[1:])
    refused, grounded = chat.bodies
    assert "tools" in refused and "tools" not in grounded
    assert "Facts from Weather for Paris, France — Open-Meteo" in grounded["messages"][-1]["content"]
    # From then on it does not offer tools again: one request per answer.
    list(generator.stream([{"role": "user", "content": "Tell me a joke."}]))
    assert len(chat.bodies) == 3 and "tools" not in chat.bodies[-1]


def test_a_server_that_ignores_tools_never_makes_up_the_answer(chat, weather_server):
    chat.ignore_tools = True  # llama.cpp's server with a plain chat format: tools taken, never called
    generator = generator_for(chat, toolbox_for(weather_server.geocoding_url, weather_server.forecast_url))
    pieces = list(generator.stream(QUESTION))
    assert "sunny" not in "".join(pieces)  # the made-up answer is never said
    assert pieces[0] == "Checking the weather in Paris… " and "8 degrees Celsius" in "".join(pieces[1:])
    offered, grounded = chat.bodies
    assert "tools" in offered and "Facts from Weather for Paris" in grounded["messages"][-1]["content"]
    # A question that is not the tools' is streamed as it comes.
    assert "".join(generator.stream([{"role": "user", "content": "Tell me a joke."}])).startswith("It is sunny")


def test_a_failing_tool_is_said_and_the_model_is_not_asked_to_guess(chat):
    dead = f"http://127.0.0.1:{free_port()}"
    generator = generator_for(chat, toolbox_for(f"{dead}/v1/search", f"{dead}/v1/forecast"))
    heard = []
    pieces = list(generator.stream(QUESTION, on_tool=lambda call, outcome: heard.append(outcome)))
    assert pieces == ["Checking the weather in Paris… ", "I can't reach the weather service right now."]
    assert isinstance(heard[0], ToolError) and len(chat.bodies) == 1


def test_a_malformed_tool_call_is_said_plainly(chat, weather_server):
    generator = generator_for(chat, toolbox_for(weather_server.geocoding_url, weather_server.forecast_url))
    chat.call_arguments = '{"place": "Paris", "when": "yesterday"}'
    assert list(generator.stream(QUESTION)) == ["I couldn't use that lookup: 'yesterday' is not a valid when."]
    chat.call_tool, chat.call_arguments = "get_stock_price", '{"symbol": "ACME"}'
    assert list(generator.stream(QUESTION)) == ["I don't have a tool called get_stock_price."]


def test_without_tools_nothing_is_offered(chat, weather_server):
    for toolbox in (None, toolbox_for(weather_server.geocoding_url, weather_server.forecast_url, native=False)):
        generator = generator_for(chat, toolbox)
        assert not generator.calls_tools
        assert "".join(generator.stream(QUESTION)).strip() == "Right now in Paris: I have no facts."
        assert "tools" not in chat.bodies[-1]
    assert json.dumps(chat.bodies[-1]["messages"]) == json.dumps(QUESTION)
