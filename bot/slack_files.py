"""Files on Slack messages: which the prompt can use, and fetching them with the bot token.

Slack message events and `conversations.replies` list a message's files with `name`, `mimetype`,
`filetype` (Slack's own type id: `text`, `python`, `csv`, …), `size`, `mode` (`hosted`,
`snippet`; `tombstone` for a deleted file, `external` for a link elsewhere) and
`url_private_download`, which answers only with the bot token as `Authorization: Bearer` and the
`files:read` scope. Without the scope Slack answers 200 with its HTML sign-in page, so a text file
that comes back as HTML where none was expected is reported as "needs files:read", not read.
Slack may redirect the download; httpx drops the `Authorization` header when a redirect leaves
the origin. The token is only ever sent to Slack's file host (`https://files.slack.com`, or
`files.slack-gov.com` for GovSlack) or to the origin of the configured Slack API URL (a proxy, the
tests' fake): a URL elsewhere, plain `http` included, is left out with a line, never fetched,
whatever an event or a stored reference says.

Text-like files (text/*, JSON, YAML, CSV, XML, logs, code, snippets) up to `max_text_bytes` are
read into the prompt with their name, invalid UTF-8 replaced. Images (PNG, JPEG, GIF, WebP) up to
20 MB become `image_url` parts (base64 data URLs). Nothing is stored but the reference (`FileRef`):
a later turn that needs the file fetches it again.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from bot.chat_types import FileRef

log = logging.getLogger(__name__)

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
SLACK_FILE_ORIGINS = ("https://files.slack.com", "https://files.slack-gov.com")
TEXT_APPLICATION_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/x-sh",
        "application/javascript",
        "application/x-javascript",
        "application/sql",
        "application/toml",
        "application/x-ndjson",
        "application/csv",
    }
)
TEXT_FILETYPES = frozenset(
    [
        "text",
        "csv",
        "tsv",
        "json",
        "yaml",
        "yml",
        "xml",
        "log",
        "markdown",
        "md",
        "python",
        "javascript",
        "typescript",
        "go",
        "java",
        "c",
        "cpp",
        "csharp",
        "ruby",
        "rust",
        "shell",
        "bash",
        "sql",
        "html",
        "css",
        "diff",
        "dockerfile",
        "kotlin",
        "swift",
        "php",
        "perl",
        "powershell",
        "scala",
        "toml",
        "ini",
        "terraform",
        "haskell",
        "lua",
        "r",
        "matlab",
        "objc",
        "vb",
        "groovy",
        "clojure",
        "elixir",
        "erlang",
    ]
)


def file_refs(files: Any) -> list[FileRef]:
    """The usable references among a message's `files` (deleted and external files are not)."""
    refs: list[FileRef] = []
    for item in files if isinstance(files, list) else []:
        if not isinstance(item, dict) or item.get("mode") in ("tombstone", "external"):
            continue
        url = item.get("url_private_download") or item.get("url_private")
        if not url or not item.get("id"):
            continue
        refs.append(
            {
                "id": str(item["id"]),
                "name": str(item.get("name") or item.get("title") or item["id"]),
                "mimetype": str(item.get("mimetype") or ""),
                "filetype": str(item.get("filetype") or ""),
                "size": int(item.get("size") or 0),
                "url": str(url),
            }
        )
    return refs


def kind_of(ref: FileRef) -> str:
    """`text`, `image` or `other`."""
    mimetype = ref["mimetype"].split(";")[0].strip().lower()
    if mimetype in IMAGE_TYPES:
        return "image"
    if (
        mimetype.startswith("text/")
        or mimetype in TEXT_APPLICATION_TYPES
        or ref["filetype"].lower() in TEXT_FILETYPES
    ):
        return "text"
    return "other"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A file made ready for a prompt: `text`, an image `data_url`, or why it was left out."""

    ref: FileRef
    text: str | None = None
    data_url: str | None = None
    left_out: str | None = None


def _kb(size: int) -> str:
    return f"{size / 1024:,.0f} kB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MB"


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of `url`, lower case; "" when it is not a URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return ""
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}".lower()


class FileFetcher:
    """Downloads files with the bot token over an injected httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_text_bytes: int = 256 * 1024,
        slack_api_url: str = "https://slack.com/api/",
    ) -> None:
        self.http = http
        self.max_text_bytes = max_text_bytes
        self.origins = frozenset({*SLACK_FILE_ORIGINS, _origin(slack_api_url)})

    def trusted(self, url: str) -> bool:
        """Whether the bot token may be sent to `url` (see the module docstring)."""
        return _origin(url) in self.origins

    def precheck(self, ref: FileRef, *, images: bool) -> str | None:
        """Why the file is left out without downloading it (type, size), or None."""
        kind = kind_of(ref)
        label = ref["filetype"].upper() or ref["mimetype"] or "this type"
        if kind == "other":
            return f"{label} files are not read"
        if kind == "image" and not images:
            return "images are off here"
        limit = MAX_IMAGE_BYTES if kind == "image" else self.max_text_bytes
        if ref["size"] > limit:
            return f"{_kb(ref['size'])}, over the {_kb(limit)} limit"
        return None

    async def fetch(self, ref: FileRef, token: str, *, images: bool) -> Fetched:
        """The file's text or image, or why it was left out; never raises."""
        reason = self.precheck(ref, images=images)
        if reason is not None:
            return Fetched(ref, left_out=reason)
        if not self.trusted(ref["url"]):
            log.warning("file %s not fetched: its URL is not on Slack's file host", ref["id"])
            return Fetched(ref, left_out="its link is not a Slack file download")
        kind = kind_of(ref)
        limit = MAX_IMAGE_BYTES if kind == "image" else self.max_text_bytes
        try:
            body, content_type = await self._download(ref["url"], token, limit)
        except _TooLarge:
            return Fetched(ref, left_out=f"over the {_kb(limit)} limit")
        except (httpx.HTTPError, _Refused) as exc:
            log.warning("file %s not fetched: %s", ref["id"], exc)
            return Fetched(ref, left_out="Slack did not let the bot download it")
        if content_type.startswith("text/html") and "html" not in ref["filetype"].lower():
            # Slack's sign-in page: the token lacks files:read.
            return Fetched(ref, left_out="the app needs the files:read scope to read it")
        if kind == "image":
            mimetype = ref["mimetype"].split(";")[0].strip().lower()
            encoded = base64.b64encode(body).decode("ascii")
            return Fetched(ref, data_url=f"data:{mimetype};base64,{encoded}")
        return Fetched(ref, text=body.decode("utf-8", "replace"))

    async def _download(self, url: str, token: str, limit: int) -> tuple[bytes, str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.stream("GET", url, headers=headers, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise _Refused(f"HTTP {resp.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
            return b"".join(chunks), resp.headers.get("content-type", "").lower()


class _TooLarge(Exception):
    pass


class _Refused(Exception):
    pass
