"""The scenario file format (documented in docs/scenarios.md).

One JSON document::

    {"format": "returns-recon-scenario/1", "clock": "...Z", "seed": 1,
     "reveni": {"store_id": "...", "returns": [...]},
     "cin7": {"products": [], "locations": [], "sales": [], "stock_transfers": [], "availability": []},
     "sitoo": {"products": [], "warehouses": [], "stores": [], "warehouse_items": [],
               "warehouse_transactions": [], "orders": []},
     "location_map": [...], "expected_exceptions": [{"type", "return_id", "item_id"}],
     "events": [...], "expected_dq_warnings": [{"field", "return_id", "item_id", "value"}]}

For large scenarios the same content is written line by line (``.jsonl`` or ``.jsonl.gz``): a
header line ``{"format": ..., "clock": ..., "seed": ..., "reveni_store_id": ...}`` then one line
per resource, ``{"k": "cin7.sales", "v": {...}}``. Both encodings read as the same stream.
"""

from __future__ import annotations

import gzip
import io
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import orjson

FORMAT = "returns-recon-scenario/1"

COLLECTIONS = (
    "reveni.returns",
    "cin7.products",
    "cin7.locations",
    "cin7.sales",
    "cin7.stock_transfers",
    "cin7.availability",
    "sitoo.products",
    "sitoo.warehouses",
    "sitoo.stores",
    "sitoo.warehouse_items",
    "sitoo.warehouse_transactions",
    "sitoo.orders",
    "location_map",
    "expected_exceptions",
    "events",
    # the data-quality warnings the spec says the scenario must raise (generator.py, LENIENT_SHAPES)
    "expected_dq_warnings",
)
HEADER_KEYS = ("format", "clock", "seed", "reveni_store_id", "config")


def _open(path: Path, mode: Literal["r", "w"]) -> IO[str]:
    if path.suffix == ".gz":
        text: Literal["rt", "wt"] = "rt" if mode == "r" else "wt"
        return gzip.open(path, text, encoding="utf-8", compresslevel=1)
    return path.open(mode, encoding="utf-8")


def is_streamed(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.gz"))


def read_header_and_records(path: Path) -> tuple[dict[str, Any], Iterator[tuple[str, dict]]]:
    """The header and a stream of (collection, record) from either encoding."""
    path = Path(path)
    if not is_streamed(path):
        with _open(path, "r") as handle:
            doc = json.load(handle)
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} document")
        header = {k: doc.get(k) for k in HEADER_KEYS}
        header["reveni_store_id"] = doc.get("reveni", {}).get("store_id")

        def records() -> Iterator[tuple[str, dict]]:
            for name in COLLECTIONS:
                group, _, key = name.partition(".")
                items = doc.get(group, {}).get(key, []) if key else doc.get(group, [])
                for item in items:
                    yield name, item

        return header, records()

    handle = _open(path, "r")
    header = json.loads(handle.readline())
    if header.get("format") != FORMAT:
        handle.close()
        raise ValueError(f"{path}: not a {FORMAT} stream")

    def stream() -> Iterator[tuple[str, dict]]:
        with handle:
            for line in handle:
                if line.strip():
                    row = orjson.loads(line)
                    yield row["k"], row["v"]

    return header, stream()


class _BackgroundSink:
    """Compresses and writes chunks on a thread (zlib releases the GIL: a second core helps)."""

    def __init__(self, path: Path) -> None:
        self._raw = path.open("wb")
        self._out: io.BufferedIOBase = (
            gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=1) if path.suffix == ".gz" else self._raw
        )
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                self._out.write(chunk)
        except BaseException as err:  # surfaced by close()
            self._error = err

    def put(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
        if self._error:
            raise self._error


class ScenarioWriter:
    """Writes a scenario as a stream (``.jsonl[.gz]``) or, for small ones, a document (``.json``)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.header = {"format": FORMAT, **header}
        self._streamed = is_streamed(self.path)
        self._buffer: dict[str, list[dict]] = {name: [] for name in COLLECTIONS}
        self._sink: _BackgroundSink | None = None
        self._chunk: list[bytes] = []
        self._chunk_size = 0
        if self._streamed:
            self._sink = _BackgroundSink(self.path)
            self._chunk.append(orjson.dumps(self.header) + b"\n")

    def write(self, collection: str, record: dict) -> None:
        if collection not in self._buffer:
            raise KeyError(collection)
        if self._sink is not None:
            line = b'{"k":"' + collection.encode() + b'","v":' + orjson.dumps(record) + b"}\n"
            self._chunk.append(line)
            self._chunk_size += len(line)
            if self._chunk_size > 1 << 20:
                self._sink.put(b"".join(self._chunk))
                self._chunk, self._chunk_size = [], 0
        else:
            self._buffer[collection].append(record)

    def write_many(self, collection: str, records: Iterable[dict]) -> None:
        for record in records:
            self.write(collection, record)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.put(b"".join(self._chunk))
            self._sink.close()
            return
        doc: dict[str, Any] = {k: v for k, v in self.header.items() if k != "reveni_store_id"}
        for name in COLLECTIONS:
            group, _, key = name.partition(".")
            if key:
                doc.setdefault(group, {})[key] = self._buffer[name]
            else:
                doc[group] = self._buffer[name]
        doc.setdefault("reveni", {})["store_id"] = self.header.get("reveni_store_id")
        with _open(self.path, "w") as handle:
            json.dump(doc, handle, indent=1)

    def __enter__(self) -> ScenarioWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
