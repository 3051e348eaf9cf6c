"""A deterministic parser for weather and time questions, for models that cannot call tools themselves.

`parse(text)` returns the tool to call and its arguments, or None for every other message. It reads typed text
and speech transcripts alike (no punctuation or capitals needed: "whats the weather like in new york
tomorrow"), and prefers missing a tool question (the model then answers alone) to hijacking an ordinary one:
explanations ("what causes rain"), creative requests ("a poem about the weather"), idioms ("under the weather",
"time complexity") and other worlds ("the weather on Mars": there is no forecast for it here) are left to
the model.

The place is what follows "in", "for", "at", "near" or "around" ("in Paris", "for New York tomorrow"), or what
precedes the keyword ("Paris weather", "Tokyo time", "what time zone is Tokyo in"); it ends at the first
time word or verb. No place: the tool's default (config `tools.default_place`) applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.tools.clock import TimeArgs, TimeWhat
from chatbot.tools.weather import Topic, WeatherArgs, When

WEATHER, TIME = "get_weather", "get_time"


@dataclass(frozen=True)
class Intent:
    tool: str  # WEATHER or TIME
    args: WeatherArgs | TimeArgs


# --- normalising -------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[\w'’./-]+")
CONTRACTIONS = {
    "what's": "what is", "whats": "what is", "how's": "how is", "hows": "how is", "it's": "it is",
    "what'll": "what will", "where's": "where is", "there's": "there is", "i'm": "i am", "im": "i am",
    "gonna": "going to", "won't": "will not", "isn't": "is not", "what're": "what are", "i'll": "i will",
    "today's": "today", "todays": "today", "tomorrow's": "tomorrow", "tomorrows": "tomorrow",
    "tonight's": "tonight", "weekend's": "weekend", "week's": "week", "timezone": "time zone",
    "timezones": "time zones",
}


@dataclass(frozen=True)
class _Words:
    norm: list[str]  # lower-case words, contractions expanded
    orig: list[str]  # the words as written, aligned with norm ("" after the first word of an expansion)

    @property
    def text(self) -> str:
        return " ".join(self.norm)


def _words(text: str) -> _Words:
    norm: list[str] = []
    orig: list[str] = []
    text = text.replace("’", "'")
    for match in _TOKEN.finditer(text):
        raw = match.group().strip("'-/")
        comma = text[match.end():match.end() + 1] == ","  # kept in the place: "Paris, Texas"
        if len(raw) > 4 and raw.endswith(".") and raw.count(".") == 1:
            raw = raw[:-1]  # "Paris." ends a sentence; "St." and "D.C." keep their dots
        word = raw.casefold().strip(".")
        if not word:
            continue
        expanded = CONTRACTIONS.get(word)
        if expanded is None and word.endswith("'s"):
            expanded, raw = word[:-2], raw[:-2]  # "Tokyo's time" -> "tokyo time"
        for n, part in enumerate((expanded or word).split()):
            norm.append(part)
            orig.append("" if n else raw + ("," if comma else ""))
    return _Words(norm, orig)


def _has(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


# --- what is never a tool question ---------------------------------------------------------------------

_EXPLAINING = (r"\b(why|explain|explains|explaining|poem|poems|story|stories|song|songs|haiku|joke|jokes|essay|"
               r"lyrics|limerick|rhyme|translate|translation|synonym|synonyms|history|invented|definition|define|"
               r"meaning|difference|differences|compare)\b"
               r"|\bwhat (causes|caused|makes|made)\b"
               r"|\bhow (do|does|did|can|could|would) (you|i|we|they|one|people|scientists|meteorologists|"
               r"weather|forecasts?|rain|snow|clouds|time zones?|it|the)\b.*\b(work|works|form|forms|formed|"
               r"happen|happens|predict|predicted|measure|measured|made|make|say|spell|pronounce|calculate|"
               r"convert|created|decided|chosen)\b"
               r"|^(i|we) (love|like|hate|enjoy|miss|adore|prefer)\b"
               r"|^what is (a )?(weather|climate|time|a time zone|a forecast)$")
_IDIOMS = (r"\b(under the weather|weather the storm|fair weather friend|right as rain|rain check|raining cats|"
           r"purple rain|make it rain|rain man|singing in the rain|snow white|snowflake|time travel|time machine|"
           r"in no time|on time|time management|spare time|free time|full time|part time|half time|overtime|"
           r"time complexity|time signature|space time|spacetime|prime time|time period|timeline|times table|"
           r"time difference|time limit|time frame|how many time zones|weather (app|apps|channel|station|"
           r"stations|balloon|balloons|satellite|satellites|vane|proof|resistant|stripping|forecaster|"
           r"forecasters))\b")
_OTHER_WORLDS = (r"\b(mars|martian|venus|jupiter|saturn|neptune|uranus|pluto|the moon|titan|outer space|"
                 r"the iss|space station|another planet|other planets|exoplanets?)\b")
_BUSINESS = (r"\b(sales|revenue|budget|economic|economy|financial|market|stock|stocks|earnings|demand|"
             r"population|growth|traffic|election|profit|profits|cash flow|inflation)\b")

# --- what is one ---------------------------------------------------------------------------------------

_ZONE = r"\b(time zones?|utc offset|gmt offset|what zone)\b"
_TIME = (r"\bwhat time (is it|it is)\b|\bwhat hour is it\b"
         r"|\bwhat is the (current |local |exact )?time\b(?! (of|to|when|for the|it takes)\b)"
         r"|\b(current|local|exact) time\b"
         r"|\b(tell|give|show) me the time\b|\b(know|got|have) the time\b"
         r"|\btime (is it )?(right )?now\b"
         r"|^(the )?(current )?time (in|at|for|over in) "
         r"|\bthe time (in|at|over in|out in|there) ")
_DATE = (r"\bwhat is (the )?(date|day)( today)?\b(?! (of|for|when|did|was|does|will|that)\b)"
         r"|\bwhat (date|day) is it\b|\bwhat day of the week is it\b|\btoday date\b|\bcurrent date\b"
         r"|\b(tell|give) me the date\b|\bwhat is today\b$|^(the )?date (in|at|for) ")

_CONDITIONS = (r"sunny|cloudy|windy|foggy|stormy|hot|cold|warm|chilly|freezing|humid|nice|rainy|snowy|icy|dry|"
               r"wet|clear|overcast|muggy|breezy|cool")
_PRECIPITATION = r"rain|snow|pour|drizzle|storm|hail|sleet|thunder|shower"
_WEATHER = (
    r"\bweather\b"
    r"|\b(will|is|does|did|would|could|might|should|going to) it (be )?(going to )?"
    rf"({_PRECIPITATION}|raining|snowing|pouring|drizzling|storming|hailing)\b"
    rf"|\b(is|will) it (be |going to be |gonna be )?({_CONDITIONS})\b"
    r"(?! (in here|inside|to|that|if|enough|for me)\b)"
    r"|\b(chance|chances|probability|risk|odds|likelihood) (of|for) (rain|snow|showers|precipitation|storms?|"
    r"thunderstorms?|sun|sunshine)\b"
    r"|\b(any|expecting|expect|expected) (rain|snow|showers|storms?|thunderstorms?)\b"
    r"|\bwill there be (any )?(rain|snow|storms?|thunder|showers|sun|sunshine|frost|fog)\b"
    r"|\bis there (any )?(rain|snow|storms?) (today|tonight|tomorrow|in|forecast|coming|expected)\b"
    r"|\b(need|bring|take|pack|carry|grab|wear)\b.*\b(umbrella|raincoat|rain coat|rain jacket|sunscreen|"
    r"sun cream|wellies|rain boots|jacket|coat|sweater|jumper|gloves)\b"
    r"|\bhow (hot|cold|warm|chilly|cool|humid|windy|sunny|nice|freezing) (is it|will it be|is it going to be|"
    r"it is|it will be|does it get|it gets|is the weather)\b"
    r"|\bhow (hot|cold|warm|chilly|humid|windy) (is|will) .+ (be )?(today|tonight|tomorrow|right now|now|"
    r"this week|this weekend|at the moment|outside)$"
    r"|\bwhat is the (temperature|temp)\b(?! (of|at which|needed|required|to cook|for cooking|inside)\b)"
    r"|\b(temperature|temp|degrees) (outside|today|tonight|tomorrow|now|right now|this week|this weekend|in|"
    r"for|at)\b"
    r"|\bhow many degrees (is it|will it be|outside|today|tomorrow|in)\b"
    r"|\bwhat is the (high|low) (today|tomorrow|tonight|for|in)\b"
    r"|\b(what is it|how is it) like (outside|out)\b|\bhow is it (outside|out there)\b"
    r"|\b(wind speed|windspeed|how strong is the wind)\b"
    r"|\bforecast\b")
_NOT_WEATHER = (r"\b(temperature|temp) (in|of|at) (the |my |your |a )?(oven|fridge|freezer|room|house|home|office|"
                r"car|pool|body|water|sun|space|core|tank|engine|kitchen|sauna|hot tub|microwave)\b"
                r"|\btemperature of\b"
                r"|\b(in|for|during) (cold|hot|warm|bad|rainy|snowy|wet|extreme|freezing|humid|sunny|windy) weather\b")

# --- arguments -----------------------------------------------------------------------------------------

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER_WORDS = r"(two|three|four|five|six|seven|eight|nine|ten|\d+)"


def _when(text: str) -> When:
    if _has(r"\bday after tomorrow\b", text):
        return "day_after_tomorrow"
    if _has(r"\btomorrow\b", text):
        return "tomorrow"
    if _has(r"\bweekend\b|\bsaturday and sunday\b", text):
        return "weekend"
    for day in _WEEKDAYS:
        if _has(rf"\b{day}\b", text):
            return day  # type: ignore[return-value]
    if _has(rf"\b(this week|next week|the week|week ahead|coming days|next (few )?days|next {_NUMBER_WORDS} days|"
            rf"{_NUMBER_WORDS} day)\b", text):
        return "week"
    if _has(r"\b(today|tonight|this morning|this afternoon|this evening|later)\b", text):
        return "today"
    if _has(r"\b(now|right now|currently|at the moment|outside|at present)\b", text):
        return "now"
    if _has(r"\b(will|going to|forecast|chance|chances|expect|expected|expecting|need|bring|take)\b", text):
        return "today"
    return "now"


def _topic(text: str) -> Topic:
    if _has(r"\b(rain|raining|rainy|snow|snowing|snowy|umbrella|raincoat|drizzle|showers?|storms?|stormy|"
            r"thunder|thunderstorms?|hail|sleet|precipitation|wet|dry|pour|pouring|wellies)\b", text):
        return "precipitation"
    if _has(r"\b(wind|windy|breezy|gusts?|gusty|windspeed)\b", text):
        return "wind"
    if _has(r"\b(hot|cold|warm|chilly|cool|freezing|temperature|temp|degrees|high|low|heat|jacket|coat|"
            r"sweater|jumper|gloves|humid)\b", text):
        return "temperature"
    return "general"


_PREPOSITIONS = {"in", "for", "at", "near", "around"}
_AFTER_OF = {"zone", "zones", "weather", "forecast", "time", "temperature"}  # "the time zone of Tokyo"
_STOP = set(
    "today tonight tomorrow now right currently this that next coming later on at in for during over by from to "
    "is are was were will would does do did should could can and or but please like going expected forecast "
    "forecasts weather time times temperature temp degrees rain raining snow snowing it there then if so because "
    "when with morning afternoon evening night weekend week days day outside though thanks thank okay ok "
    "exactly anyway again hot cold warm sunny windy zone zones date look looking supposed expect be need "
    "umbrella jacket coat what how which where who".split()
) | set(_WEEKDAYS)
_NOT_PLACES = {"the", "a", "an", "my", "your", "our", "me", "us", "you", "celsius", "fahrenheit", "degrees",
               "general", "here", "there", "home", "total", "advance", "case", "hours", "minutes", "which", "what",
               "it", "this", "these", "those", "all", "some", "any"}
_TIME_NOUNS = {"morning", "afternoon", "evening", "night", "week", "weekend", "next", "coming", "moment",
               "future", "past", "day", "days", "meantime", "end"}
_KEYWORDS = {"weather", "forecast", "time", "temperature", "temp", "zone", "date"}
_BEFORE_KEYWORD_STOP = _STOP | {"what", "is", "the", "how", "s", "current", "local", "tell", "me", "give", "check",
                                "get", "show", "a", "an", "my", "your", "our", "any", "of", "exact", "hey", "hi",
                                "ok", "okay", "so", "um", "uh", "please"}
_ADJECTIVES = set(_CONDITIONS.split("|"))
_ABBREVIATIONS = {"uk", "us", "usa", "uae"}
# What people say for a few cities, which neither geocoder knows by that name ("LA" is not Los Angeles there).
PLACE_NICKNAMES = {"la": "Los Angeles", "l.a": "Los Angeles", "nyc": "New York City", "sf": "San Francisco",
                   "dc": "Washington", "d.c": "Washington", "philly": "Philadelphia", "vegas": "Las Vegas"}
_LOWER_IN_NAMES = {"de", "da", "do", "du", "la", "le", "les", "of", "upon", "on", "am", "an", "der", "del", "y",
                   "en", "sur", "di"}


def _span(words: _Words, start: int, stop_words: set[str]) -> tuple[int, int]:
    end = start
    while end < len(words.norm) and words.norm[end] not in stop_words:
        end += 1
    return start, end


def _place_text(words: _Words, start: int, end: int) -> str:
    place = " ".join(w for w in words.orig[start:end] if w).strip(" .,")
    if place.casefold() in PLACE_NICKNAMES:
        return PLACE_NICKNAMES[place.casefold()]
    if place == place.lower():  # typed or transcribed in lower case: "new york" -> "New York"
        place = " ".join(w.upper() if w in _ABBREVIATIONS else w if w in _LOWER_IN_NAMES and n
                         else w[:1].upper() + w[1:] for n, w in enumerate(place.split()))
    return place


def _is_place(words: _Words, start: int, end: int) -> bool:
    first = words.norm[start] if start < end else ""
    if first == "the":  # "in the Hague", "in the US"; but not "for the"
        second = words.norm[start + 1] if start + 1 < end else "the"
        return second not in _NOT_PLACES - {"us"} and not second.isdigit()
    return bool(first) and first not in _NOT_PLACES and not first.isdigit()


def _place(words: _Words) -> str:
    norm = words.norm
    for i, word in enumerate(norm):
        if word in _PREPOSITIONS or (word == "of" and i > 0 and norm[i - 1] in _AFTER_OF):
            if norm[i + 1:i + 2] == ["the"] and (i + 2 >= len(norm) or norm[i + 2] in _TIME_NOUNS):
                continue  # "in the morning", "for the weekend"
            start, end = _span(words, i + 1, _STOP)
            if _is_place(words, start, end):
                return _place_text(words, start, end)
    # "how hot is Dubai today"
    for i in range(1, len(norm) - 2):
        if norm[i - 1] == "how" and norm[i] in _ADJECTIVES and norm[i + 1] in ("is", "will"):
            start, end = _span(words, i + 2, _STOP)
            if _is_place(words, start, end):
                return _place_text(words, start, end)
    # "what time zone is Tokyo in", "which time zone does Sydney use"
    for i in range(len(norm) - 2):
        if norm[i] in ("zone", "zones") and norm[i + 1] in ("is", "does", "are"):
            start, end = _span(words, i + 2, _STOP | {"use", "uses", "have", "has", "follow"})
            if _is_place(words, start, end):
                return _place_text(words, start, end)
    # "Paris weather", "Tokyo time", "what is the London forecast"
    for k in range(len(norm) - 1, -1, -1):
        if norm[k] in _KEYWORDS:
            start = k
            while start > 0 and norm[start - 1] not in _BEFORE_KEYWORD_STOP:
                start -= 1
            if start < k:
                return _place_text(words, start, k)
    # "weather paris tomorrow"
    if norm and norm[0] in ("weather", "forecast"):
        start, end = _span(words, 1, _STOP | {"report", "update"})
        if _is_place(words, start, end):
            return _place_text(words, start, end)
    return ""


# --- the parser ----------------------------------------------------------------------------------------

def parse(text: str) -> Intent | None:
    """The tool a weather or time question needs, with its arguments; None for anything else."""
    words = _words(text)
    s = words.text
    if not s or _has(_EXPLAINING, s) or _has(_IDIOMS, s) or _has(_OTHER_WORLDS, s):
        return None
    what: TimeWhat | None = None
    if _has(_ZONE, s):
        what = "zone"
    elif _has(_TIME, s):
        what = "time"
    elif _has(_DATE, s):
        what = "date"
    if what is not None:
        return Intent(TIME, TimeArgs(place=_place(words), what=what))
    if not _has(_WEATHER, s) or _has(_NOT_WEATHER, s):
        return None
    if _has(r"\bforecast\b", s) and not _has(r"\bweather\b", s) and _has(_BUSINESS, s):
        return None  # a sales forecast
    return Intent(WEATHER, WeatherArgs(place=_place(words), when=_when(s), topic=_topic(s)))
