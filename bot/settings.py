"""The bot's one settings class, read from the environment and from `.env`.

Every name is the contract's (see the README's configuration table). Secrets are `SecretStr`, so a
settings dump or an exception repr never shows them. Validation fails fast with a sentence that says
where to find or how to fix the value, because the person reading it is usually setting the bot up
for the first time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot import settings_checks as checks
from bot.errors import ConfigError
from bot.settings_checks import PORTAL_HINT, V1_SUFFIX, SlackMode

ReasoningEffort = Literal["minimal", "low", "medium", "high"]
"""How long a reasoning deployment (o-series, gpt-5) thinks before it answers."""

DEFAULT_API_VERSION = "2024-10-21"
"""The latest GA api-version of the deployment API (the GA chain is 2023-05-15, 2024-02-01,
2024-06-01, 2024-10-21)."""

DEFAULT_SUGGESTED_PROMPTS: tuple[tuple[str, str], ...] = (
    (
        "Summarize this channel",
        "Summarize the recent discussion in this channel: topics, decisions, open questions.",
    ),
    ("Explain an error", "Explain this error message and how to fix it:"),
    ("Draft a message", "Help me draft a short, friendly Slack message about:"),
)
"""The assistant pane's prompts: (title shown, message sent when clicked)."""


def _split_prompts(value: object) -> object:
    """`title|message; title|message` → pairs (an item without `|` is both)."""
    if not isinstance(value, str):
        return value
    prompts = []
    for item in (part.strip() for part in value.split(";")):
        if item:
            title, bar, message = item.partition("|")
            prompts.append((title.strip(), (message if bar else title).strip()))
    return tuple(prompts)


def _four_prompts(value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    if len(value) > 4:
        raise ValueError(
            f"BOT_SUGGESTED_PROMPTS has {len(value)} prompts; Slack shows at most 4 "
            "(separate them with ';', each 'title|message')"
        )
    if any(not title or not message for title, message in value):
        raise ValueError("BOT_SUGGESTED_PROMPTS: every prompt needs a title and a message")
    return value


SuggestedPrompts = Annotated[
    tuple[tuple[str, str], ...],
    NoDecode,
    BeforeValidator(_split_prompts),
    AfterValidator(_four_prompts),
]


class Settings(BaseSettings):
    """Everything the bot reads from its environment, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    azure_openai_endpoint: str = ""
    azure_openai_key: SecretStr | None = None
    azure_openai_key_2: SecretStr | None = None
    azure_openai_ad_token: SecretStr | None = None
    azure_openai_deployment: str = "gpt-35-turbo"
    azure_openai_api_version: str = DEFAULT_API_VERSION
    """A dated api-version (the deployment API), or `v1` (Azure's v1 API, no api-version)."""
    azure_openai_auth: Literal["key", "entra"] = Field(default="key", validate_default=True)
    """`entra`: tokens from azure-identity's DefaultAzureCredential instead of a key."""
    azure_openai_timeout: float = Field(default=60.0, gt=0)
    azure_openai_max_retries: int = Field(default=3, ge=0, le=10)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    """With the client id, and no bot token: OAuth distribution (`bot.oauth`)."""
    slack_app_token: SecretStr | None = Field(default=None, validate_default=True)
    slack_api_url: str = "https://slack.com/api/"
    slack_scopes: Annotated[tuple[str, ...], NoDecode] = ()
    """Bot scopes asked for at install (OAuth mode); empty: the manifest's."""
    bot_public_url: checks.PublicUrl = None
    """https://HOST where Slack reaches the bot; the OAuth redirect URL is derived from it."""
    slack_redirect_uri: checks.PublicUrl = None

    redis_url: SecretStr | None = None
    """May carry a password (`redis://:pw@host`), hence secret."""
    redis_cluster: bool | None = None
    """Redis Cluster (true) or one server (false); unset: asked from the server at start."""
    redis_ca_file: str | None = Field(default=None, validate_default=True)
    """PEM file of the CA that signed the Redis server's certificate (rediss:// only); unset:
    the system's trusted CAs (enough for Azure Cache for Redis)."""

    bot_slash_command: str = "/gpt"
    bot_admin_user_ids: Annotated[tuple[str, ...], NoDecode] = ()
    bot_redis_prefix: str = "bot:"
    bot_system_prompt: str = (
        "You are a helpful assistant in a Slack workspace. Answer concisely; use Markdown."
    )
    bot_temperature: float | None = Field(default=None, ge=0, le=2)
    bot_top_p: float | None = Field(default=None, ge=0, le=1)
    bot_max_tokens: int = Field(default=1000, ge=1, le=128_000)
    bot_context_window: int = Field(default=16_000, ge=256, le=2_000_000)
    bot_history_turns: int = Field(default=20, ge=0, le=100)
    bot_history_ttl_days: float = Field(default=30, gt=0)
    bot_daily_quota: int = Field(default=0, ge=0)
    """Tokens per user per UTC day across the workspace; 0 = unlimited. Channels may override."""
    bot_stream: bool = True
    """Show answers growing while Azure writes them (where the api-version allows usage)."""
    bot_file_max_bytes: int = Field(default=256 * 1024, ge=1024, le=10 * 1024 * 1024)
    """Largest text-like file (log, code, CSV, …) read into a prompt; bigger ones are named as
    left out. Images have Azure's own limit (20 MB)."""
    bot_stream_interval: float = Field(default=1.0, ge=0.05, le=10)
    """Seconds between progress updates of a streamed answer (Slack: about one a second)."""
    bot_reasoning_effort: ReasoningEffort | None = None
    """Default `reasoning_effort` for reasoning deployments; unset: Azure's default (not sent)."""
    bot_suggested_prompts: SuggestedPrompts = DEFAULT_SUGGESTED_PROMPTS
    """The assistant pane's suggested prompts: up to four `title|message` items separated by
    `;` (an item without `|` is both); empty: none."""
    bot_lock_timeout: float = Field(default=120, gt=0)
    """How long a turn waits for its thread while earlier turns there are answered."""
    bot_lease_seconds: float = Field(default=15, ge=1, le=300)
    """How long a replica's hold on its turns (dedup claims, thread locks) lasts without being
    renewed: after it dies, Slack's retries are answered and its turns taken over within this."""
    bot_drain_seconds: float = Field(default=25, ge=0)
    web_concurrency: int = Field(default=1, ge=1, le=64)
    """HTTP worker processes (the Heroku/uvicorn convention): one per core uses every core."""
    bot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    bot_log_content: bool = False
    """Log message text (debug only). Off by default: Slack messages are the team's data."""

    @field_validator(*checks.OPTIONAL, mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `KEY=` in a .env file means "not set", not "the empty key"; nor does `xoxb-`.
        if isinstance(value, str) and (not value.strip() or value.strip() in checks.PLACEHOLDERS):
            return None
        return value

    @field_validator("bot_admin_user_ids", "slack_scopes", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("azure_openai_auth", mode="before")
    @classmethod
    def _lower_auth(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("bot_log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("azure_openai_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        return checks.check_endpoint(value)

    @field_validator("azure_openai_deployment", "azure_openai_api_version")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("azure_openai_api_version")
    @classmethod
    def _v1_lower(cls, value: str) -> str:
        return "v1" if value.lower() == "v1" else value

    @field_validator("slack_api_url")
    @classmethod
    def _slash_api_url(cls, value: str) -> str:
        # slack_sdk joins base_url + method, so the base must end with '/'.
        return value if value.endswith("/") else value + "/"

    @field_validator("bot_slash_command")
    @classmethod
    def _check_command(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("/") or len(value) < 2 or " " in value:
            raise ValueError("BOT_SLASH_COMMAND must look like /gpt")
        return value

    @field_validator("azure_openai_auth")
    @classmethod
    def _need_some_azure_auth(cls, value: str, info: ValidationInfo) -> str:
        # A field validator run on the default too, not a model validator, so that it is listed
        # with every other problem (a model validator only runs once all fields are valid).
        if value == "entra":
            return value  # the credential is found (or not) when the first token is needed
        if (
            info.data.get("azure_openai_key") is None
            and info.data.get("azure_openai_ad_token") is None
        ):
            raise ValueError(
                "AZURE_OPENAI_KEY is not set. Use KEY1 or KEY2 of your resource. "
                + PORTAL_HINT
                + " Or set AZURE_OPENAI_AUTH=entra to use a managed identity instead of a key."
            )
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _slack_mode_needs(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        mode = checks.SLACK_MODE.get()
        if mode is not None:
            present = {k for k, v in info.data.items() if k.startswith("slack_") and v is not None}
            missing = checks.slack_requirements(
                mode, present | ({"slack_app_token"} if value is not None else set())
            )
            if missing:
                raise ValueError("\n".join(missing))
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            checks.check_redis_url(value.get_secret_value())
        return value

    @field_validator("redis_ca_file")
    @classmethod
    def _ca_file_for_tls(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            url = info.data.get("redis_url")
            checks.check_ca_file(value, url.get_secret_value() if url else None)
        return value

    @model_validator(mode="before")
    @classmethod
    def _v1_endpoint_means_v1(cls, data: object) -> object:
        # An endpoint pasted as `.../openai/v1` says which API its owner follows; an explicit
        # AZURE_OPENAI_API_VERSION still wins.
        if isinstance(data, dict):
            endpoint = str(data.get("azure_openai_endpoint") or "").strip().rstrip("/")
            if endpoint.endswith(V1_SUFFIX) and not data.get("azure_openai_api_version"):
                return {**data, "azure_openai_api_version": "v1"}
        return data

    @property
    def oauth_mode(self) -> bool:
        """OAuth distribution: the app's client id and secret, and no SLACK_BOT_TOKEN."""
        return bool(self.slack_client_id and self.slack_client_secret) and not self.slack_bot_token

    @property
    def history_ttl_seconds(self) -> int:
        return int(self.bot_history_ttl_days * 86_400)


def load_settings(*, slack: SlackMode | None = None, **overrides: object) -> Settings:
    """Build `Settings` or raise `ConfigError` whose message lists every problem and its fix;
    with `slack`, the tokens that Slack mode needs are checked too, in the same list."""
    mode = checks.SLACK_MODE.set(slack)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(checks.problems_text(exc)) from None
    finally:
        checks.SLACK_MODE.reset(mode)
