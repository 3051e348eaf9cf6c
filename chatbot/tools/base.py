"""The typed interface every tool implements, and the values that pass between a tool and a turn.

A tool has a name, a description, a frozen dataclass of typed arguments (whose fields, with a description
in their metadata, give the JSON schema that models calling tools natively are shown) and a `run` that
returns facts or raises a `ToolError` whose message is written for the user.
"""

from __future__ import annotations

import dataclasses
import string
import typing
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, Literal, Mapping, Protocol, TypeVar

Args = TypeVar("Args")

# English names whatever the locale (strftime's %A follows it): tools answer in English.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # date.weekday() order
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


class ToolError(RuntimeError):
    """A tool could not answer. The message is plain words fit to be said to the user, e.g. "I can't reach
    the weather service right now." It never holds invented data, and never a secret."""


@dataclass(frozen=True)
class ToolResult:
    tool: str  # the tool that ran ("get_weather")
    facts: str  # plain-text lines for the prompt, every number with its unit in words
    summary: str  # one or two complete spoken sentences built from the facts alone (no model needed)
    source: str  # the folded detail on the answer: "Weather for Paris, France — Open-Meteo"


@dataclass(frozen=True)
class ToolCall(Generic[Args]):
    tool: str  # a tool's name
    args: Args  # that tool's frozen argument dataclass
    lead_in: str  # said and shown at once while the tool runs ("Checking the weather in Paris…"); "" = none


class Tool(Protocol[Args]):
    """One capability the assistant can use. Safe to share between sessions and threads."""

    @property
    def name(self) -> str:
        """The function name models see: letters, digits and underscores ("get_weather")."""
        ...

    @property
    def description(self) -> str:
        """What the tool answers, for models that choose tools themselves."""
        ...

    @property
    def args_type(self) -> type[Args]:
        """The frozen dataclass of its arguments; each field's metadata["description"] explains it."""
        ...

    def lead_in(self, args: Args) -> str:
        """A short sentence to say while `run` works; "" when the tool answers at once (offline)."""
        ...

    def run(self, args: Args) -> ToolResult:
        """The facts, or `ToolError` with a message for the user."""
        ...


def parameters_schema(args_type: type) -> dict:
    """The JSON schema of a tool's argument dataclass: strings, integers and enumerations (Literal)."""
    hints = typing.get_type_hints(args_type)
    properties: dict[str, dict] = {}
    required: list[str] = []
    for field in dataclasses.fields(args_type):
        prop = _json_type(hints[field.name], f"{args_type.__name__}.{field.name}")
        prop["description"] = field.metadata["description"]
        properties[field.name] = prop
        if field.default is dataclasses.MISSING:
            required.append(field.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def function_schema(tool: Tool) -> dict:
    """A tool as the chat-completions API's `tools` list holds it (transformers' chat templates take it too)."""
    return {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                             "parameters": parameters_schema(tool.args_type)}}


def args_from_json(args_type: type[Args], raw: Mapping[str, Any]) -> Args:
    """Arguments a model wrote, checked against the dataclass; a missing optional field keeps its default.
    Raises ToolError (the model's request was malformed: the user is told plainly, nothing is guessed)."""
    hints = typing.get_type_hints(args_type)
    names = {f.name for f in dataclasses.fields(args_type)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ToolError(f"I couldn't use that lookup: it asked for {', '.join(unknown)}, which I don't know.")
    values = {}
    for name, value in raw.items():
        annotation = hints[name]
        if typing.get_origin(annotation) is Literal:
            if value not in typing.get_args(annotation):
                raise ToolError(f"I couldn't use that lookup: {value!r} is not a valid {name}.")
        elif annotation is str:
            if not isinstance(value, str):
                raise ToolError(f"I couldn't use that lookup: its {name} was not text.")
            value = value.strip()
        elif annotation is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ToolError(f"I couldn't use that lookup: its {name} was not a whole number.")
        values[name] = value
    try:
        return args_type(**values)
    except TypeError as e:  # a required field is missing
        raise ToolError("I couldn't use that lookup: something it needs was missing.") from e


_PUNCTUATION_TO_SPACE = str.maketrans({c: " " for c in string.punctuation if c != "/"})  # "/": Europe/Paris


def fold(text: str) -> str:
    """A name compared case-, accent- and punctuation-blind: "Zürich" = "zurich", "St. Louis" = "st louis"."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.casefold().translate(_PUNCTUATION_TO_SPACE).split())


def date_words(day: date, year: bool = False) -> str:
    """ "Tuesday 2 December" (or "... 2026")."""
    text = f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if year else text


def _json_type(annotation: Any, where: str) -> dict:
    if typing.get_origin(annotation) is Literal:
        return {"type": "string", "enum": list(typing.get_args(annotation))}
    if annotation is str:
        return {"type": "string"}
    if annotation is int:
        return {"type": "integer"}
    raise TypeError(f"unsupported argument type {annotation!r} for {where}")
