"""A small client of the node's HTTP API (docs/API.md), for the ``clearchain`` command.

The CLI talks to nodes only through the API. Standard library only (``urllib``): the commands
are synchronous and short-lived. An API error becomes ``ApiError`` with the node's own stable
code, so the command line prints ``error: <code>: <message>`` like any other failure; a node
that cannot be reached is ``node_unreachable``, a malformed URL (``--node``, ``$CLEARCHAIN_NODE``)
``bad_node_url``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from chain.errors import ClearchainError
from cli.inputs import parse_node_url

DEFAULT_NET_DIR = Path(".devnet/net")
DEFAULT_NODE = "http://127.0.0.1:26601"
NODE_ENV = "CLEARCHAIN_NODE"


def segment(text: str) -> str:
    """``text`` quoted as one URL path segment (an id typed with a ``/`` stays one segment)."""
    return urllib.parse.quote(text, safe="")


class ApiError(ClearchainError):
    """The node answered with an error, or could not be reached."""

    def __init__(self, code: str, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(code, message)
        self.status = status
        self.body = body


def default_node_url(net_dir: Path = DEFAULT_NET_DIR) -> str:
    """``$CLEARCHAIN_NODE``, else the first node of the local network in ``net_dir``, else node0's
    default address."""
    env = os.environ.get(NODE_ENV)
    if env:
        return env
    try:
        nodes = json.loads((net_dir / "network.json").read_text())["nodes"]
        return f"http://{nodes[0]['rpc']}"
    except (OSError, ValueError, KeyError, IndexError):
        return DEFAULT_NODE


class Client:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        """Raises InputError ``bad_node_url`` for anything but an http(s)://HOST[:PORT] URL, before
        any connection (urllib would raise ValueError, or try ftp:// for 45 s)."""
        self.url = parse_node_url(url)
        self.timeout = timeout

    def get(self, path: str, **query: Any) -> Any:
        return self._call("GET", path, query, None)

    def post(self, path: str, body: Any, **query: Any) -> Any:
        return self._call("POST", path, query, body)

    def get_bytes(self, path: str, **query: Any) -> bytes:
        """A binary reply (``GET /history``); errors are JSON as everywhere else."""
        return self._call("GET", path, query, None, binary=True)

    def _call(self, method: str, path: str, query: dict[str, Any], body: Any, binary: bool = False) -> Any:
        params = {k: v for k, v in query.items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read() if binary else json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                doc = json.loads(raw)
            except ValueError:
                raise ApiError("http_error", f"{method} {path}: HTTP {exc.code}", exc.code) from exc
            if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                err = doc["error"]
                raise ApiError(str(err.get("code")), str(err.get("message")), exc.code, doc) from exc
            if isinstance(doc, dict) and doc.get("refused"):
                first = doc["refused"][0]
                raise ApiError(str(first.get("code")), str(first.get("message")), exc.code, doc) from exc
            raise ApiError("http_error", f"{method} {path}: HTTP {exc.code}", exc.code, doc) from exc
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(
                "node_unreachable",
                f"cannot reach {self.url} ({reason}); is the network up? (clearchain net up)",
            ) from exc
