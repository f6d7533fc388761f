"""One redaction for every place a secret could surface: messages, log lines, ``ctl`` rows, Prefect.

Connection URLs carry passwords in several forms, and all of them are hidden the same way:

* ``user:password@host``, including a password with an unencoded ``@`` (``etl:pa@ss@host``: the
  user information ends at the *last* ``@`` before the host, as in ``urllib``);
* query arguments ``password=`` / ``pwd=`` / ``passwd=`` (any case);
* ``odbc_connect`` strings (``PWD=...;``, ``Pwd={...}``, ``Password=...``).

Two layers. :func:`redact_url` renders a URL with every one of those parts as ``***``. :func:`scrub`
cleans any *text* (an exception message, a log line, a driver error that echoes its connection
string): it masks the password-shaped patterns above and every secret registered so far. Each
process registers the secrets of the URLs it is configured with when its settings are read
(:meth:`flows.settings.Settings.model_post_init`), so a driver message that repeats a password in a
form no pattern knows is still cleaned. :func:`install_log_scrubbing` applies :func:`scrub` to every
log record the process creates (Prefect's API log handler included) and drops tracebacks unless the
log level is DEBUG.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url

from flows.errors import WarehouseError

MASK = "***"
SECRET_QUERY_KEYS = frozenset({"password", "pwd", "passwd"})
# a secret shorter than this is not searched for in free text: masking every "ab" would garble messages
# (the URL forms above are still masked by their shape)
MIN_SCRUBBED_LENGTH = 4

_SECRETS: set[str] = set()
# key=value pairs of connection strings (libpq, ODBC) and query strings: the value up to ; & or space,
# or a quoted/braced value
_KEY_VALUE = re.compile(r"(?i)\b(password|pwd|passwd)(\s*=\s*)('[^']*'|\"[^\"]*\"|\{[^}]*\}|[^;&\s'\"]+)")
# scheme://user:password@ (the password may itself hold @: the user information ends at the last @ before
# the host's terminator)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/?#@\s]*):([^\s/?#]*)@(?=[^@\s]*(?:[/?#\s]|$))")


def parse_url(text: str) -> URL:
    """A SQLAlchemy URL, reading a password with an unencoded ``@`` the way a person meant it.

    SQLAlchemy takes the user information up to the *first* ``@``, so ``etl:pa@ss@db`` would connect to
    host ``ss@db`` and put the password's tail in every connection error. Raises what ``make_url`` raises
    for a value that is no URL at all.
    """
    scheme, separator, rest = text.partition("://")
    head, question, query = rest.partition("?")
    userinfo, at, host_and_path = head.rpartition("@")
    if not (separator and at and "@" in userinfo and ":" in userinfo and "/" not in userinfo):
        return make_url(text)
    username, _, password = userinfo.partition(":")
    parsed = make_url(f"{scheme}://{host_and_path}{question}{query}")
    return parsed.set(username=unquote(username), password=unquote(password))


def url_secrets(url: str | URL) -> set[str]:
    """Every secret a URL carries: its password, password-like query arguments, odbc_connect passwords."""
    try:
        parsed = url if isinstance(url, URL) else parse_url(url)
    except Exception:  # not a URL: nothing can be extracted, the whole value is treated as secret
        return {str(url)} if str(url) else set()
    found = {parsed.password} if parsed.password else set()
    for key, value in parsed.query.items():
        values = (value,) if isinstance(value, str) else tuple(value)
        if key.lower() in SECRET_QUERY_KEYS:
            found.update(values)
        elif key.lower() == "odbc_connect":
            for text in values:
                found.update(match.group(3).strip("'\"{}") for match in _KEY_VALUE.finditer(unquote(text)))
    return {secret for secret in found if secret}


def register(*secrets: str) -> None:
    """Remember secrets (and their percent-decoded forms) so that :func:`scrub` hides them anywhere."""
    for secret in secrets:
        for form in {secret, unquote(secret)}:
            if len(form) >= MIN_SCRUBBED_LENGTH:
                _SECRETS.add(form)


def register_url(url: str | URL) -> None:
    register(*url_secrets(url))


def scrub(text: str) -> str:
    """``text`` with every password-shaped part and every registered secret replaced by ``***``."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_url(url: str | URL) -> str:
    """Render a URL with its password, password query arguments and odbc_connect password as ``***``."""
    try:
        parsed = url if isinstance(url, URL) else parse_url(url)
    except Exception:  # an unparsable URL: show nothing of it rather than risk a secret
        return "<unparsable URL>"
    query: dict[str, str | tuple[str, ...]] = {}
    for key, value in parsed.query.items():
        if key.lower() in SECRET_QUERY_KEYS:
            query[key] = MASK
        elif key.lower() == "odbc_connect":
            query[key] = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", unquote(str(value)))
        else:
            query[key] = value
    rendered = parsed.set(query=query).render_as_string(hide_password=True)
    return scrub(unquote(rendered))


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or during."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class ScrubbedError(WarehouseError):
    """An exception whose text held a secret, re-raised with the secret hidden and its cause dropped.

    ``transient`` keeps the retry decision of the original (a lost connection is still retried).
    """

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@contextmanager
def scrubbed_errors() -> Iterator[None]:
    """Let no exception leave the block with a secret in its text or in the text of its causes.

    Prefect stores what a task or flow raised (state message, logs, events): an exception that holds a
    secret anywhere in its chain is replaced by a :class:`ScrubbedError` with the same text, scrubbed.
    (A context manager, not a decorator: Prefect reads a task's or flow's signature from its own module.)
    """
    try:
        yield
    except Exception as exc:
        texts = [f"{type(e).__name__}: {e}" for e in chain(exc)]
        if all(scrub(text) == text for text in texts):
            raise
        from flows.database import is_transient

        raise ScrubbedError(scrub(texts[0]), transient=is_transient(exc)) from None


_installed: dict[str, bool] = {}


def install_log_scrubbing(show_tracebacks: bool) -> None:
    """Scrub every log record this process creates from now on; tracebacks only if ``show_tracebacks``.

    A record factory rather than a handler filter: it sees every record whatever handler (console, file,
    Prefect's API) later writes it, including handlers configured after this call.
    """
    _installed["tracebacks"] = show_tracebacks
    if _installed.get("factory"):
        return
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging reports that itself, later
            return record
        if record.exc_info and record.exc_info[1] is not None:
            if _installed["tracebacks"]:
                record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            else:
                error = record.exc_info[1]
                if type(error).__name__ not in message:  # keep the one line that says what failed
                    first_line = (str(error).strip().splitlines() or [""])[0]
                    message = f"{message} ({type(error).__name__}: {first_line})"
                record.exc_info = None
                record.exc_text = None
        record.msg, record.args = scrub(message), None
        return record

    logging.setLogRecordFactory(factory)
    _installed["factory"] = True
