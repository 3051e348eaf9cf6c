"""A local stand-in for Open-Meteo on 127.0.0.1: its geocoding and forecast endpoints, answering with responses
in the API's documented JSON shape, kept in tests/data/open_meteo/.

Like the real API it answers a geocoding name it does not know with no `results`, and a forecast that asks
for a variable it does not have with HTTP 400 `{"error": true, "reason": ...}`. `delay_s` makes it slow.
"""

from __future__ import annotations

import json
import threading
import time
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).parent / "data" / "open_meteo"
UNKNOWN_PLACE = DATA / "geocoding_atlantis_under_the_sea.json"  # the API's answer for a name it lacks
FORECAST = {"celsius": DATA / "forecast_paris_metric.json", "fahrenheit": DATA / "forecast_paris_imperial.json"}


def _file_name(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name.casefold())
    return "_".join("".join(c for c in plain if c.isalnum() or c == " ").split())


class OpenMeteoServer:
    def __init__(self):
        self.delay_s = 0.0
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, query) of each request, in order
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                outer.requests.append((url.path, query))
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if url.path == "/v1/search":
                    status, body = outer.geocode(query)
                elif url.path == "/v1/forecast":
                    status, body = outer.forecast(query)
                else:
                    status, body = 404, {"error": True, "reason": "Not Found"}
                payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the slow-server test): nothing to answer

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.geocoding_url = f"http://127.0.0.1:{self.port}/v1/search"
        self.forecast_url = f"http://127.0.0.1:{self.port}/v1/forecast"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> "OpenMeteoServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def geocode(self, query: dict[str, str]) -> tuple[int, dict]:
        if not query.get("name"):
            return 400, {"error": True, "reason": "Parameter 'name' is required"}
        path = DATA / f"geocoding_{_file_name(query['name'])}.json"
        data = json.loads((path if path.exists() else UNKNOWN_PLACE).read_text(encoding="utf-8"))
        count = int(query.get("count", "10"))
        if "results" in data:
            data["results"] = data["results"][:count]
        return 200, data

    def forecast(self, query: dict[str, str]) -> tuple[int, dict]:
        for required in ("latitude", "longitude"):
            if required not in query:
                return 400, {"error": True, "reason": f"Parameter '{required}' is required"}
        data = json.loads(FORECAST[query.get("temperature_unit", "celsius")].read_text(encoding="utf-8"))
        for section in ("current", "daily"):
            wanted = [v for v in query.get(section, "").split(",") if v]
            unknown = [v for v in wanted if v not in data[section]]
            if unknown:
                return 400, {"error": True, "reason": f"Cannot initialize WeatherVariable from invalid String value "
                                                      f"{unknown[0]}."}
            if not wanted:
                data.pop(section)
                data.pop(f"{section}_units")
        days = int(query.get("forecast_days", "7"))
        if "daily" in data:
            data["daily"] = {k: v[:days] for k, v in data["daily"].items()}
        return 200, data
