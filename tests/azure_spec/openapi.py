"""Azure's OpenAPI 3.0 chat-completions spec read as JSON Schema (draft 7), to judge the bot's
request bodies and to build error bodies the spec admits.

OpenAPI 3.0 is not JSON Schema, so the spec is translated once:

* `nullable: true` admits `null` (the schema becomes `anyOf: [schema, {type: null}]`);
* a `$ref`'s sibling keywords are ignored (OpenAPI 3.0 says so; draft 7 does too);
* a `discriminator` with a `mapping` selects the mapped schema by the property's value
  (`if`/`then` per value), and each mapped schema admits only its own value(s). The mapped
  schemas usually extend the discriminating base through `allOf`; they get the base without its
  dispatch, or validation would loop;
* documentation-only keywords (`example`, `x-*`, `readOnly`, ...) are dropped.

"Defined top-level properties" are the `properties` of the request schema and of its `allOf`
members. OpenAPI admits undeclared properties, but older api-versions answer 400 "Unrecognized
request argument supplied" to them, so `undefined_fields` reports them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema

HERE = Path(__file__).resolve().parent
PREFIX = "#/components/schemas/"
_DROPPED = {"nullable", "discriminator", "example", "readOnly", "writeOnly", "xml", "deprecated",
            "externalDocs"}  # fmt: skip
V1_ADDITIONS: dict[str, Any] = {
    "model": {"type": "string"},
    "max_completion_tokens": {"type": "integer", "nullable": True},
    "reasoning_effort": {"type": "string", "enum": ["minimal", "low", "medium", "high"]},
}
"""What the v1 API takes beyond the newest GA spec here: the deployment as `model`, and the
reasoning parameters of 2024-12-01-preview and later."""
NEWEST = "2024-10-21"


def convert(node: Any) -> Any:
    """One OpenAPI schema node as draft-7 JSON Schema (see the module docstring)."""
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key.startswith("x-"):
            continue
        if key == "properties":
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = convert(value)
        else:
            out[key] = value
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _rebase(schema: dict[str, Any], base: str) -> dict[str, Any]:
    """A mapped schema whose `allOf` extends the discriminating base, pointed at the base
    without its dispatch."""
    schema = copy.deepcopy(schema)
    for member in schema.get("allOf", []):
        if member.get("$ref") == PREFIX + base:
            member["$ref"] = PREFIX + base + "__base"
    return schema


def convert_schemas(schemas: dict[str, Any]) -> dict[str, Any]:
    """`components.schemas` as JSON Schema, discriminators resolved."""
    out = {name: convert(schema) for name, schema in schemas.items()}
    for name, schema in schemas.items():
        discriminator = schema.get("discriminator") if isinstance(schema, dict) else None
        if not discriminator or "mapping" not in discriminator:
            continue
        prop, mapping = discriminator["propertyName"], discriminator["mapping"]
        out[name + "__base"] = out[name]
        branches = [
            {"if": {"properties": {prop: {"const": value}}, "required": [prop]},
             "then": {"$ref": target}}
            for value, target in mapping.items()
        ]  # fmt: skip
        out[name] = {
            "allOf": [
                {"$ref": PREFIX + name + "__base"},
                {"properties": {prop: {"enum": list(mapping)}}},
                *branches,
            ]
        }
        for target in set(mapping.values()):
            target_name = target.removeprefix(PREFIX)
            own = [value for value, t in mapping.items() if t == target]
            out[target_name] = {
                "allOf": [
                    _rebase(out[target_name], name),
                    {"properties": {prop: {"enum": own}}},
                ]
            }
    return out


class ChatSpec:
    """The request and error schemas of one api-version's chat completions operation."""

    def __init__(self, version: str, *, yaml_overlay: bool = True) -> None:
        self.version = version
        folder = NEWEST if version == "v1" else version
        doc = json.loads((HERE / folder / "inference.chat-completions.json").read_text())
        self.schemas: dict[str, Any] = doc["components"]["schemas"]
        operation = doc["paths"]["/deployments/{deployment-id}/chat/completions"]["post"]
        self.request: dict[str, Any] = operation["requestBody"]["content"]["application/json"][
            "schema"
        ]
        if yaml_overlay and folder == NEWEST:
            overlay = json.loads((HERE / folder / "inference-yaml.stream_options.json").read_text())
            for name, patch in overlay.items():
                if not name.startswith("x-"):
                    self._extend(name, patch["properties"])
        if version == "v1":
            self._extend("createChatCompletionRequest", V1_ADDITIONS)
        self.examples = json.loads(
            (HERE / folder / "examples" / "chat_completions.json").read_text()
        )
        components = {"schemas": convert_schemas(self.schemas)}
        self._request_validator = jsonschema.Draft7Validator(
            {"allOf": [convert(self.request)], "components": components}
        )
        self._error_validator = jsonschema.Draft7Validator(
            {"$ref": PREFIX + "errorResponse", "components": components}
        )

    def _extend(self, name: str, properties: dict[str, Any]) -> None:
        """Add properties to the request schema's own (non-$ref) `allOf` member."""
        schema = self.schemas[name]
        own = next(m for m in schema.get("allOf", [schema]) if "$ref" not in m)
        for key, value in properties.items():
            own.setdefault("properties", {}).setdefault(key, value)

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.schemas[node["$ref"].removeprefix(PREFIX)]
        return node

    def defined_fields(self) -> set[str]:
        root = self._resolve(self.request)
        names = set(root.get("properties", {}))
        for member in root.get("allOf", []):
            names |= set(self._resolve(member).get("properties", {}))
        return names

    def undefined_fields(self, body: dict[str, Any]) -> set[str]:
        return set(body) - self.defined_fields()

    def request_errors(self, body: dict[str, Any]) -> list[str]:
        return [e.message for e in self._request_validator.iter_errors(body)]

    def error_body_errors(self, body: object) -> list[str]:
        return [e.message for e in self._error_validator.iter_errors(body)]
