"""The merchants file: one deployment reconciling several merchants (``RECON_MERCHANTS_PATH``).

Without the variable the package runs the one merchant of the environment, as before (``load_merchants()`` returns
None). With it, the YAML file lists every merchant: its id (in its DAG ids, pools and reader role), the Airflow
connections its runs use, its location map and its overrides of the ``RECON_`` settings. Example:
``include/merchants.example.yaml``.

Pure: no Airflow, no network, no database. The DAG files read it when they are parsed, so a load is one small YAML
parse, cached by the file's path and modification time. A file that cannot be used raises ``MerchantsFileError``
naming the file, the line and column, and the field of every problem, one per line.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from returns_recon.settings import ReconSettings

ENV_VAR = "RECON_MERCHANTS_PATH"
MERCHANT_ID_PATTERN = r"^[a-z][a-z0-9_]{1,29}$"
# Airflow's own rule for a connection id (letters, digits, '_', '-', '.')
CONNECTION_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,200}$"
# The DAGs every merchant has (events only with ``events: true``): returns_recon_<id>_<kind>
DAG_KINDS: tuple[str, ...] = ("hourly", "daily", "golive_check", "events")
# Slots per API account (connection) and system, as the single merchant's pools (orchestration/defaults.py POOLS)
System = Literal["reveni", "cin7", "sitoo"]
POOL_SLOTS: dict[str, int] = {"reveni": 2, "cin7": 1, "sitoo": 2}
# Set by the merchant's own field, not in its settings
NOT_IN_SETTINGS = {
    "location_map_path": "set the merchant's location map with location_map (beside settings)",
    "merchant_id": "the merchant's id is its id",
    "merchant_name": "set the merchant's name with name (beside settings)",
}


class MerchantsFileError(ValueError):
    """The merchants file is missing, not YAML, or not a valid merchants file. ``problems``: one line each, naming the
    file, the line and column, and the field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _text(err: Mapping[str, Any]) -> str:
    """A pydantic error's message, without the prefix pydantic puts before a validator's own message."""
    text = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text


def _custom(err: Mapping[str, Any], message: str | None = None) -> InitErrorDetails:
    """An error as pydantic reported it (or with another message), to raise again among others."""
    text = message if message is not None else _text(err)
    # no context: the message is shown as it is, braces and all
    return {"type": PydanticCustomError(str(err["type"]), text), "loc": tuple(err["loc"]), "input": err.get("input")}


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class _Strict(BaseModel):
    """Frozen, no unknown fields; an unknown field's error names the close matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def _unknown_field(cls, name: str) -> str:
        return f"unknown field {name!r}{_did_you_mean(name, list(cls.model_fields))}"

    @classmethod
    def _more_problems(cls, data: Any) -> list[InitErrorDetails]:
        """Problems found in the raw input, reported even when other fields fail."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _explained(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        more = cls._more_problems(data)
        try:
            result = handler(data)
        except ValidationError as err:
            errors = [
                _custom(e, cls._unknown_field(str(e["loc"][0])))
                if e["type"] == "extra_forbidden" and len(e["loc"]) == 1
                else _custom(e)
                for e in err.errors(include_url=False)
            ]
            raise ValidationError.from_exception_data(cls.__name__, [*errors, *more]) from None
        if more:
            raise ValidationError.from_exception_data(cls.__name__, more)
        return result


class _SettingsOverridesBase(_Strict):
    """A merchant's overrides of ReconSettings: only the fields given are set (``model_fields_set``)."""

    @classmethod
    def _unknown_field(cls, name: str) -> str:
        if name in NOT_IN_SETTINGS:
            return f"{name!r} cannot be set in settings: {NOT_IN_SETTINGS[name]}"
        return f"{name!r} is not a setting{_did_you_mean(name, list(cls.model_fields))}"

    @model_serializer(mode="plain")
    def _only_the_given(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields if name in self.model_fields_set}

    def __repr_args__(self) -> Any:
        return [(name, value) for name, value in super().__repr_args__() if name in self.model_fields_set]

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields if name in self.model_fields_set}


def _overrides_model() -> type[_SettingsOverridesBase]:
    """ReconSettings' fields (their types and constraints), none required, location_map_path left out."""
    fields: dict[str, Any] = {}
    for name, info in ReconSettings.model_fields.items():
        if name in NOT_IN_SETTINGS:
            continue
        annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = (annotation, Field(None, description=info.description))
    return create_model("SettingsOverrides", __base__=_SettingsOverridesBase, **fields)


class _GivenSettings(ReconSettings):
    """ReconSettings validated from the values given and nothing else: pydantic-settings would read the environment
    again, and merge a dict setting given with the environment's (RECON_EMAIL_RECIPIENTS)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


if TYPE_CHECKING:
    SettingsOverrides = _SettingsOverridesBase
else:
    SettingsOverrides = _overrides_model()


def _relative_to_file(path: Path, info: ValidationInfo) -> Path:
    base_dir = (info.context or {}).get("base_dir")
    return Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path


ConnectionId = Annotated[str, Field(pattern=CONNECTION_ID_PATTERN)]


class MerchantConnections(_Strict):
    """The Airflow connection ids of one merchant's runs."""

    warehouse: ConnectionId
    reveni: ConnectionId
    cin7: ConnectionId
    sitoo: ConnectionId | None = None  # None: no stores (no Sitoo extraction, no Sitoo postings)
    smtp: ConnectionId = "smtp_default"
    cin7_webhook: ConnectionId | None = None


class Merchant(_Strict):
    id: str = Field(pattern=MERCHANT_ID_PATTERN)
    name: str = Field(min_length=1)  # the id when not given
    connections: MerchantConnections
    location_map: Path
    events: bool = False
    settings: SettingsOverrides = Field(default_factory=SettingsOverrides)

    # where the loader found the merchant's settings, for errors of settings_for
    _settings_where: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_id(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("name") is None and "id" in data:
            return {**data, "name": data["id"]}
        return data

    @field_validator("location_map")
    @classmethod
    def _map_beside_the_file(cls, path: Path, info: ValidationInfo) -> Path:
        return _relative_to_file(path, info)

    @field_validator("settings")
    @classmethod
    def _dirs_beside_the_file(cls, overrides: SettingsOverrides, info: ValidationInfo) -> SettingsOverrides:
        if "data_docs_dir" in overrides.model_fields_set:
            given = overrides.values()["data_docs_dir"]
            return overrides.model_copy(update={"data_docs_dir": _relative_to_file(given, info)})
        return overrides

    @property
    def overrides(self) -> dict[str, Any]:
        """The settings the file sets for this merchant (field name -> validated value)."""
        return self.settings.values()

    @property
    def has_stores(self) -> bool:
        return self.connections.sitoo is not None

    @property
    def reader_role(self) -> str:
        return f"recon_reader_{self.id}"

    def dag_id(self, kind: str) -> str:
        return f"returns_recon_{self.id}_{kind}"

    def dag_ids(self) -> tuple[str, ...]:
        """The ids of the merchant's DAGs (its events DAG only with ``events: true``)."""
        return tuple(self.dag_id(kind) for kind in DAG_KINDS if kind != "events" or self.events)

    def pool(self, system: System) -> str:
        """The pool of ``system``'s API account: merchants sharing a connection share its pool (``POOL_SLOTS``)."""
        if system not in POOL_SLOTS:
            raise ValueError(f"no pool for {system!r}: one of {', '.join(POOL_SLOTS)}")
        conn_id = getattr(self.connections, system)
        if conn_id is None:
            raise ValueError(f"merchant {self.id!r} has no {system} connection (no stores)")
        return f"{system}__{conn_id}"

    def pools(self) -> dict[str, int]:
        """The merchant's pools and their slots (no Sitoo pool without stores)."""
        return {self.pool(s): POOL_SLOTS[s] for s in ("reveni", "cin7", "sitoo") if getattr(self.connections, s)}

    def settings_for(self, base: ReconSettings) -> ReconSettings:
        """The merchant's effective settings: ``base`` (the ``RECON_`` environment) with the merchant's overrides, its
        location map, and Data Docs in ``<base data_docs_dir>/<id>`` unless it sets data_docs_dir. Validated as a
        whole, from these values only: the environment is not read again, a setting given replaces the environment's
        (a dict too: no merging), and no other merchant's value can leak in."""
        overrides = self.overrides
        merged = {
            **base.model_dump(),
            "data_docs_dir": base.data_docs_dir / self.id,
            **overrides,
            "location_map_path": self.location_map,
            "merchant_id": self.id,
            "merchant_name": self.name,
        }
        try:
            checked = _GivenSettings.model_validate(merged)
        except ValidationError as err:
            where = self._settings_where or f"merchant {self.id!r} (settings)"
            raise MerchantsFileError(
                [
                    f"{where}: {'.'.join(map(str, e['loc'])) + ': ' if e['loc'] else ''}"
                    f"{_text(e)} (the RECON_ environment with the settings of merchant {self.id!r})"
                    for e in err.errors(include_url=False)
                ]
            ) from None
        # every field is given, so model_validate marks all of them set: keep those the environment or the file set
        fields_set = base.model_fields_set | set(overrides) | {"location_map_path", "data_docs_dir"}
        fields_set |= {"merchant_id", "merchant_name"}
        return ReconSettings.model_construct(_fields_set=fields_set, **dict(checked))


class MerchantsFile(_Strict):
    merchants: list[Merchant]

    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("id",), ("connections", "warehouse"))

    @field_validator("merchants")
    @classmethod
    def _some(cls, merchants: list[Merchant]) -> list[Merchant]:
        if not merchants:
            raise ValueError(
                f"no merchants: list at least one (or unset {ENV_VAR} to run the one merchant of the environment)"
            )
        return merchants

    @classmethod
    def _more_problems(cls, data: Any) -> list[InitErrorDetails]:
        """Two merchants with one id, or one warehouse connection (no isolation): at the second of them."""
        items = data.get("merchants") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            return []
        problems: list[InitErrorDetails] = []
        for path in cls.UNIQUE:
            first: dict[str, int] = {}
            for index, item in enumerate(items):
                value: Any = item
                for key in path:
                    value = value.get(key) if isinstance(value, Mapping) else None
                if not isinstance(value, str):
                    continue
                if value in first:
                    message = (
                        f"duplicate merchant id {value!r} (merchants[{first[value]}] has it too)"
                        if path == ("id",)
                        else f"warehouse connection {value!r} is merchants[{first[value]}]'s too: each merchant "
                        "needs a warehouse of its own"
                    )
                    problems.append(
                        {
                            "type": PydanticCustomError(f"duplicate_{path[-1]}", message),
                            "loc": ("merchants", index, *path),
                            "input": value,
                        }
                    )
                else:
                    first[value] = index
        return problems

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.merchants)

    def by_id(self, merchant_id: str) -> Merchant:
        for merchant in self.merchants:
            if merchant.id == merchant_id:
                return merchant
        raise KeyError(merchant_id)

    def pools(self) -> dict[str, int]:
        """Every pool the merchants' DAGs use, with its slots (a connection shared by merchants: one pool)."""
        return {name: slots for m in self.merchants for name, slots in m.pools().items()}


# --- loading ----------------------------------------------------------------------------------------------------


def _where(file: str, node: Node | None) -> str:
    if node is None:
        return f"{file} line 1, column 1"
    return f"{file} line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


def _field_path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def _walk(root: Node | None, loc: Sequence[str | int]) -> tuple[Node | None, Node | None, list[str | int]]:
    """Down ``loc`` as far as the file goes: the key naming the node reached (None for a list item or the top),
    the node, and the part of ``loc`` found."""
    node: Node | None = root
    key: Node | None = None
    parts: list[str | int] = []
    for part in loc:
        if isinstance(node, MappingNode) and isinstance(part, str):
            # the last of duplicate keys: the one YAML keeps
            found = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part]
            if not found:
                break
            key, node = found[-1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            key, node = None, node.value[part]
        else:
            break
        parts.append(part)
    return key, node, parts


def _locate(root: Node | None, loc: Sequence[str | int], error_type: str) -> tuple[Node | None, list[str | int]]:
    """The node an error at ``loc`` is about, and the part of ``loc`` found in the file (a missing field: the key
    of the mapping that lacks it; an unknown field: its key)."""
    key, node, parts = _walk(root, loc)
    if error_type == "missing" and len(parts) < len(loc):
        return key or node, [*parts, loc[len(parts)]]
    if error_type == "extra_forbidden" and key is not None and len(parts) == len(loc):
        return key, parts
    return node, parts


def _duplicate_keys(file: str, node: Node | None, path: list[str | int]) -> list[tuple[Node, str]]:
    problems: list[tuple[Node, str]] = []
    if isinstance(node, MappingNode):
        seen: dict[str, Node] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else None
            if name is not None and name in seen:
                first = seen[name].start_mark
                where = f" ({_field_path([*path, name])})"
                problems.append(
                    (
                        key,
                        f"{_where(file, key)}{where}: duplicate key {name!r} (first at line {first.line + 1}, "
                        f"column {first.column + 1}; YAML would keep only the last)",
                    )
                )
            elif name is not None:
                seen[name] = key
            problems += _duplicate_keys(file, value, [*path, name if name is not None else "?"])
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(file, item, [*path, index])
    return problems


def _sorted(problems: list[tuple[Node | None, str]]) -> list[str]:
    def position(problem: tuple[Node | None, str]) -> tuple[int, int]:
        node = problem[0]
        return (node.start_mark.line, node.start_mark.column) if node is not None else (0, 0)

    return [text for _, text in sorted(problems, key=position)]


def parse_merchants(text: str, file: str = "<merchants file>", base_dir: Path | None = None) -> MerchantsFile:
    """The merchants file in ``text``; ``file`` names it in errors; relative paths are relative to ``base_dir``."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{file} line {mark.line + 1}, column {mark.column + 1}" if mark else file
        raise MerchantsFileError([f"{where}: not valid YAML: {err.problem or err.context}"]) from None
    except yaml.YAMLError as err:
        raise MerchantsFileError([f"{file}: not valid YAML: {err}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a YAML {type(data).__name__}"
        raise MerchantsFileError([f"{_where(file, root)}: {found}, expected a mapping with a 'merchants' list"])
    problems: list[tuple[Node | None, str]] = list(_duplicate_keys(file, root, []))
    merchants: MerchantsFile | None = None
    try:
        merchants = MerchantsFile.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        for e in err.errors(include_url=False):
            node, parts = _locate(root, e["loc"], e["type"])
            path = f" ({_field_path(parts)})" if parts else ""
            problems.append((node, f"{_where(file, node)}{path}: {e['msg']}"))
    if problems or merchants is None:
        raise MerchantsFileError(_sorted(problems))
    for index, merchant in enumerate(merchants.merchants):
        key, node, parts = _walk(root, ("merchants", index, "settings"))
        merchant._settings_where = f"{_where(file, key or node)} ({_field_path(parts)})"
    return merchants


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int, size: int) -> MerchantsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MerchantsFileError([f"{path}: cannot be read ({type(err).__name__}: {err})"]) from None
    return parse_merchants(text, str(path), path.absolute().parent)


def load_merchants(path: Path | None = None) -> MerchantsFile | None:
    """The merchants file at ``path`` (default: ``RECON_MERCHANTS_PATH``); None when the variable is unset or empty
    (one merchant, from the environment). Cached by path and modification time; raises ``MerchantsFileError``."""
    if path is None:
        value = os.environ.get(ENV_VAR, "").strip()
        if not value:
            return None
        path = Path(value)
    try:
        stat = path.stat()
    except OSError as err:
        raise MerchantsFileError(
            [f"{path}: the merchants file ({ENV_VAR}) cannot be read ({type(err).__name__}: {err.strerror})"]
        ) from None
    return _load(path, stat.st_mtime_ns, stat.st_size)
