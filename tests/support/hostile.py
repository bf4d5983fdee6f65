"""Hostile input for the hostile-input tier (tests/integration/test_hostile_input.py):
values, JSON bodies, and a raw HTTP client that sends exactly the bytes given
(requests normalises ``..`` and refuses control characters in headers).

Every value is a ``str`` meant to be placed in a form field, a query string or
(percent-encoded) a URL path segment; ``SAMPLE`` is a few of each kind for the
larger cross products.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import quote

# --------------------------------------------------------------------- values

LDAP_FILTER = [
    "*", "*)(uid=*", "*)(|(uid=*))", "student1)(|(uid=*", "admin1)(&)", "*)(objectClass=*",
    "(&(uid=*)(userPassword=*))", "\\2a", "student1\\00", "\\", "(", ")", "admin1,ou=people",
    "uid=admin1,ou=people,dc=slicerhub,dc=test", "cn=teachers", "#admin1", "+admin1", "<admin1>",
    'admin1"', "admin1;", "*" * 64,
]
TRAVERSAL = [
    "..", "../", "../..", "../../../../../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e", "%2e%2e%2f%2e%2e%2f",
    "%252e%252e%252f", "....//....//", "..;/", "..\\..\\", "/etc/passwd", "etc/passwd%00.ipynb", "~", "~root", ".",
    "./", ".hidden", "anat101/../../..", "file:///etc/passwd", "\\\\host\\share", "C:\\Windows\\win.ini",
    "%c0%ae%c0%ae/", "seg-lab/../../../hub",
]
LOOKALIKE = [
    "\u0430dmin1",                  # Cyrillic а
    "\u0455tudent1",                # Cyrillic ѕ
    "\uff53\uff54\uff55\uff44\uff45\uff4e\uff54\uff11",  # full-width ｓｔｕｄｅｎｔ１
    "\uff41\uff4e\uff41\uff54\uff11\uff10\uff11",        # full-width ａｎａｔ１０１
    "student1\u202e", "\u202eadmin1", "stu\u200bdent1", "\ufeffstudent1", "student1\u0301", "\u212aelvin",
    "\ufb01le", "stra\u00dfe", "\u0130student", "\u2028", "\u00a0student1", "\U0001f600", "\U0001d564tudent1",
    "\u2126", "\u01c5", "se\u0261-lab", "anat1\u200d01",
]
CONTROL = [
    "\x00", "student1\x00", "\x00student1", "\r\n", "a\r\nX-Injected: 1", "a\r\n\r\n<h1>x</h1>", "\n", "\t",
    "\x1b[2J", "\x7f", "\x08\x08\x08", "\x0b\x0c", "\x85", "\x1f", "pass\x00word",
]
LONG = ["a" * 33, "a" * 256, "a" * 1025, "a" * 8192, "\u00e9" * 4096, "%" * 3000]
INJECTION = [
    "' OR '1'='1", "'; DROP TABLE users; --", '" OR ""="', "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>', "javascript:alert(1)", "{{7*7}}", "${7*7}", "${jndi:ldap://127.0.0.1/a}",
    "%s%s%s%n", "%(message)s", "{0}{1}", "$(id)", "`id`", "|id", "; ls", "null", "None", "undefined", "NaN",
    "true", "[]", "{}", "-1", "0", "1e309", "99999999999999999999999999", "0x41", " ", "",
]
REDIRECTS = [
    "//evil.example/", "///evil.example", "http://evil.example/", "https:evil.example", "/\\evil.example",
    "\\\\evil.example", "javascript:alert(1)", "//127.0.0.1:1/", "/%2f%2fevil.example", "/hub/../../evil",
    "http:/evil.example", " //evil.example", "\t//evil.example", "/\t/evil.example",
    "%0d%0aLocation: http://evil.example", "data:text/html,<script>alert(1)</script>",
    "https://127.0.0.1@evil.example/", "/hub/home", "",
]

ALL = list(dict.fromkeys(LDAP_FILTER + TRAVERSAL + LOOKALIKE + CONTROL + LONG + INJECTION))
SAMPLE = list(dict.fromkeys([
    "*)(uid=*", "admin1,ou=people", "..", "../../../../../../etc/passwd", "seg-lab/../../../hub",
    "\u0430dmin1", "\uff41\uff4e\uff41\uff54\uff11\uff10\uff11", "student1\u202e", "stu\u200bdent1", "\x00",
    "a\r\nX-Injected: 1", "\x1b[2J", "a" * 8192, "' OR '1'='1", "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>', "%s%s%s%n", "null", "-1", "1e309", "99999999999999999999999999", " ", "",
]))

# Raw JSON texts for one field of a body: wrong types, extreme numbers, escapes.
JSON_SCALARS = [
    "null", "true", "false", "0", "-1", "1.5", "1e309", "-1e309", "NaN", "Infinity", "-Infinity",
    "1" + "0" * 400, "-" + "9" * 40, '"3600"', '"abc"', '""', "[]", "{}", "[3600]", '{"$gt": 0}',
    '"\\ud800"', '"\\u0000"', '"\\u202e"', '"1e309"', json.dumps("a" * 100_000),
]
# Whole request bodies that are not the JSON object an API wants.
BAD_BODIES = [
    b"", b"{", b"}", b"[]", b"null", b"1", b'"x"', b"{'a': 1}", b'{"a": 1,}', b"\xff\xfe\x00\x01", b"\x00" * 64,
    b"<xml/>", b"a=1&b=2", b'{"a": "\\ud800"}', b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"a": "' + b"x" * 2_000_000 + b'"}', b'{"__proto__": {"admin": true}}',
]


def path_segment(value: str) -> str:
    """``value`` as one percent-encoded URL path segment."""
    return quote(value, safe="")


def short(value, n: int = 60) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = ascii(text)
    return text if len(text) <= n else text[: n - 12] + f"…({len(text)})"


# ---------------------------------------------------------------- raw client

XSS_MARKERS = ("<script>alert(1)</script>", "onerror=alert(1)>")


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        return json.loads(self.body)

    def message(self) -> str:
        """What the refusal tells a person or a script ('' when it says nothing)."""
        if self.content_type == "application/json":
            try:
                data = self.json()
            except ValueError:
                return ""
            if not isinstance(data, dict):
                return ""
            # {"message": ...} (JupyterHub, the services); OAuth 2 errors say {"error": ...} (RFC 6749)
            msg = data.get("message") or data.get("error_description") or data.get("error")
            return msg.strip() if isinstance(msg, str) else ""
        if self.content_type in ("text/html", "text/plain"):
            text = self.body.decode("utf-8", "replace")
            text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", text)
            text = html.unescape(re.sub(r"<[^>]+>", " ", text))
            return " ".join(text.split())
        if not self.body:
            # A refusal by the HTTP parser (configurable-http-proxy, tornado): only a status line.
            return self.reason.strip()
        return ""


@dataclass
class Request:
    method: str
    target: str | bytes
    headers: list[tuple[str, str | bytes]] = field(default_factory=list)
    body: bytes = b""


def send(port: int, req: Request, timeout: float = 15.0) -> Response:
    """Send REQ byte for byte to 127.0.0.1:PORT; one connection per request."""
    target = req.target.encode("utf-8") if isinstance(req.target, str) else req.target
    lines = [req.method.encode() + b" " + target + b" HTTP/1.1"]
    names = {k.lower() for k, _ in req.headers}
    headers = list(req.headers)
    if "host" not in names:
        headers.insert(0, ("Host", f"127.0.0.1:{port}"))
    headers.append(("Connection", "close"))
    if req.body or req.method in ("POST", "PUT", "PATCH"):
        if "content-length" not in names:
            headers.append(("Content-Length", str(len(req.body))))
    for k, v in headers:
        lines.append(k.encode("latin-1") + b": " + (v if isinstance(v, bytes) else v.encode("utf-8")))
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + req.body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was read: the answer is still there to read
        resp = http.client.HTTPResponse(sock, method=req.method)
        resp.begin()
        body = resp.read()
        return Response(resp.status, resp.reason, list(resp.getheaders()), body)

# Passwords LDAP cannot carry (ldap3's SASLprep refuses them: a 500 before), and
# the words the refusal uses; the authenticator and the hub tests share them.
UNUSABLE_PASSWORDS = {
    "tab": ("pass\tword", "control character"),
    "newline": ("pass\nword", "control character"),
    "nul": ("pass\x00word", "control character"),
    "del": ("pass\x7fword", "control character"),
    "c1-control": ("pass\x85word", "control character"),
    "bidi-override": ("pass\u202eword", "text-direction"),
    "left-to-right-mark": ("\u200epassword", "text-direction"),
    "surrogate": ("pass\ud800word", "broken character"),
    "private-use": ("pass\ue000word", "private-use"),
    "rtl-mixed": ("abc\u05d0\u05d1", "right-to-left"),
    "only-ignorable": ("\u00ad\u00ad", "not allowed"),
}
