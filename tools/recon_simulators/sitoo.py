"""Sitoo REST API v2 simulator (``/v2/accounts/{accountid}/...json``, HTTP Basic).

Each behaviour from Sitoo's documentation as mirrored in ``shared/reference/vendor/sitoo/src`` (cited
by path), else ``sitoo_api.md``: ``{totalcount, items}`` envelopes with ``start``/``num``, ``fields``
and, where declared, ``sort``; only the query parameters each endpoint declares are read (what an
undeclared one gets is not documented: ``behaviour.sitoo.undeclared_query_parameters``, ignored by
default); inactive products listed only with ``includeinactive=true``; money as 2-decimal strings,
quantities as 3-decimal strings, Unix-second dates; warehouse transactions posted in batches of at
most 1000 with a status per element, refused for virtual warehouses and read-only types; refund
orders at account level; errors ``{statuscode, errortext}``; 429 with Retry-After. Fault setting: an element
of a warehouse-transaction batch answered 5xx or 429 inside the envelope, not applied (``element_error_rate``).
"""

from __future__ import annotations

import base64
import bisect
import copy
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from recon_simulators.http import ServiceApp, read_json
from recon_simulators.timefmt import unix

MAX_BATCH = 1000
# The query parameters each endpoint declares (shared/reference/vendor/sitoo/src/paths/…, get.parameters)
DECLARED = {
    "products": {"sku", "includeinactive", "datelastmodified", "start", "num", "fields"},  # sites/_siteid_/products
    "warehouses": {"start", "num", "fields"},  # sites/_siteid_/warehouses.yaml
    "stores": {"start", "num", "fields"},  # sites/_siteid_/stores.yaml
    # sites/_siteid_/warehouses/_warehouseid_/warehouseitems.yaml
    "warehouseitems": {"start", "num", "datelastmodifiedfrom", "datelastmodifiedto", "sku", "fields"},
    # sites/_siteid_/warehousetransactions.yaml
    "warehousetransactions": {
        "warehousetransactionid",
        "warehousetransactionidfrom",
        "warehousetransactionidto",
        "datecreatedfrom",
        "datecreatedto",
        "warehouseid",
        "transactiontype",
        "start",
        "num",
        "sort",
        "fields",
    },
    # orders.yaml
    "orders": {
        "eshopid",
        "externalid",
        "orderid",
        "orderidfrom",
        "orderidto",
        "orderdatefrom",
        "orderdateto",
        "orderstate",
        "paymentstate",
        "ordertype",
        "email",
        "start",
        "num",
        "sort",
        "fields",
    },
}
INTERNAL_PRODUCT_FIELDS = ("active",)  # product-write.yaml has it, product-read.yaml does not
READ_ONLY_TYPES = {30, 40, 50}  # Sales, Refund, StockTaking
ELEMENT_ERRORS = {500: "Internal Server Error", 503: "Service Unavailable", 429: "Too Many Requests"}
VIRTUAL = 20


def qty(value: Decimal) -> str:
    return f"{value:.3f}"


class SitooState:
    def __init__(self, account_id: str, site_id: int) -> None:
        self.account_id = account_id
        self.site_id = site_id
        self.products: dict[int, dict] = {}
        self.warehouses: dict[int, dict] = {}
        self.stores: dict[int, dict] = {}
        self.items: dict[tuple[int, str], dict] = {}
        self.transactions: list[dict] = []
        self.orders: list[dict] = []
        self._order_ids: list[int] = []

    def add_transaction(self, txn: dict, *, apply_stock: bool = True) -> dict:
        txn = copy.deepcopy(txn)
        if "warehousetransactionid" not in txn:
            txn["warehousetransactionid"] = (
                (self.transactions[-1]["warehousetransactionid"] + 1) if self.transactions else 1
            )
        for entry in txn["items"]:
            key = (txn["warehouseid"], entry["sku"])
            item = self.items.setdefault(
                key,
                {
                    "warehouseitemid": len(self.items) + 1,
                    "warehouseid": txn["warehouseid"],
                    "sku": entry["sku"],
                    "decimaltotal": "0.000",
                    "decimalreserved": "0.000",
                    "decimalavailable": "0.000",
                    "moneytotal": "0.00",
                    "datelastmodified": txn.get("datecreated"),
                },
            )
            if apply_stock:
                total = Decimal(item["decimaltotal"]) + Decimal(str(entry["decimalquantity"]))
                item["decimaltotal"] = qty(total)
                item["decimalavailable"] = qty(total - Decimal(item["decimalreserved"]))
                item["datelastmodified"] = txn.get("datecreated")
            entry.setdefault("decimaltotal", item["decimaltotal"])
        self.transactions.append(txn)
        return txn

    def add_order(self, order: dict) -> dict:
        order = copy.deepcopy(order)
        if "orderid" not in order:
            order["orderid"] = (self._order_ids[-1] + 1) if self._order_ids else 1
        index = bisect.bisect_left(self._order_ids, order["orderid"])
        self._order_ids.insert(index, order["orderid"])
        self.orders.insert(index, order)
        return order


class SitooApp(ServiceApp):
    name = "sitoo"

    def __init__(self, world, faults, api_id: str, password: str) -> None:
        self.api_id = api_id
        self.password = password
        super().__init__(world, faults)

    @property
    def state(self) -> SitooState:
        return self.world.sitoo

    def register(self) -> None:
        acc = "/v2/accounts/{accountid}"
        site = acc + "/sites/{siteid}"
        self.route(f"{site}/products.json", "products", self.products, ["GET"])
        self.route(f"{site}/warehouses.json", "warehouses", self.warehouses, ["GET"])
        self.route(f"{site}/stores.json", "stores", self.stores, ["GET"])
        self.route(f"{site}/warehouses/{{warehouseid}}/warehouseitems.json", "warehouseitems", self.items, ["GET"])
        self.route(f"{site}/warehousetransactions.json", "warehousetransactions", self.transactions, ["GET", "POST"])
        self.route(f"{acc}/orders.json", "orders", self.orders, ["GET"])
        self.route(f"{site}/orders.json", "orders:post", self.post_order, ["POST"])

    def authenticate(self, request: Request) -> Response | None:
        expected = "Basic " + base64.b64encode(f"{self.api_id}:{self.password}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return self.error(401, "Unauthorized")
        if request.path_params.get("accountid") != self.state.account_id:
            return self.error(401, "Unauthorized")
        if "siteid" in request.path_params and request.path_params["siteid"] != str(self.state.site_id):
            return self.error(404, "Invalid site")
        return None

    def budget_key(self, request: Request) -> str:
        return request.headers.get("authorization", "")

    def error(self, status: int, message: str) -> Response:
        return JSONResponse({"statuscode": status, "errortext": message}, status_code=status)

    def throttled(self) -> Response:
        return JSONResponse(
            {"statuscode": 429, "errortext": "Too Many Requests"},
            status_code=429,
            headers={"Retry-After": "1"},
        )

    # --- collections ---------------------------------------------------------------------------
    def _declared(self, request: Request, endpoint: str) -> dict[str, str] | Response:
        """The query parameters the endpoint declares; an undeclared one is ignored or refused."""
        params = dict(request.query_params)
        undeclared = sorted(set(params) - DECLARED[endpoint])
        if undeclared and self.world.behaviour.sitoo.undeclared_query_parameters == "reject":
            return self.error(400, f"Invalid parameter {undeclared[0]}")
        return {k: v for k, v in params.items() if k in DECLARED[endpoint]}

    def _collection(
        self, request: Request, rows: list[dict], id_field: str, *, endpoint: str, malformed_prefix: str = ""
    ) -> Response:
        params = self._declared(request, endpoint)
        if isinstance(params, Response):
            return params
        try:
            start = int(params.get("start", "0"))
            num = int(params.get("num", "10"))
        except ValueError:
            return self.error(400, "start and num must be integers")
        if start < 0 or num < 1:
            return self.error(400, "Invalid start or num")
        sort = params.get("sort", f"-{id_field}")  # newest first unless sorted (sitoo_api.md)
        if sort not in {id_field, f"-{id_field}"}:
            return self.error(400, f"Invalid sort field {sort}")
        descending = sort.startswith("-")
        total = len(rows)
        if start > 0 and self.faults.chance(self.faults.config.shift_rate, "shift"):
            start += -1 if self.faults.pick(2) else 1
            start = max(start, 0)
        window = rows[max(total - start - num, 0) : total - start][::-1] if descending else rows[start : start + num]
        fields = [f for f in params.get("fields", "").split(",") if f]
        out = []
        for row in window:
            if malformed_prefix and self.faults.is_malformed(f"{malformed_prefix}:{row[id_field]}"):
                row = {**row, "moneytotal_gross_all": "n/a", "orderitems": None}
            out.append({k: v for k, v in row.items() if k in fields} if fields else row)
        if out and self.faults.chance(self.faults.config.duplicate_rate, "duplicate"):
            out.insert(self.faults.pick(len(out)), out[self.faults.pick(len(out))])
        return JSONResponse({"totalcount": total, "items": out})

    def products(self, request: Request) -> Response:
        rows = list(self.state.products.values())
        if request.query_params.get("includeinactive") != "true":  # products.yaml get.parameters[1]
            rows = [r for r in rows if r.get("active", True) is not False]
        rows = [{k: v for k, v in r.items() if k not in INTERNAL_PRODUCT_FIELDS} for r in rows]
        skus = [s for s in request.query_params.get("sku", "").split(",") if s]
        if skus:
            rows = [r for r in rows if r["sku"] in skus]
        return self._collection(request, rows, "productid", endpoint="products")

    def warehouses(self, request: Request) -> Response:
        return self._collection(request, list(self.state.warehouses.values()), "warehouseid", endpoint="warehouses")

    def stores(self, request: Request) -> Response:
        return self._collection(request, list(self.state.stores.values()), "storeid", endpoint="stores")

    def items(self, request: Request) -> Response:
        warehouse_id = int(request.path_params["warehouseid"])
        if warehouse_id not in self.state.warehouses:
            return self.error(404, "Invalid warehouse")
        rows = [v for (w, _), v in sorted(self.state.items.items()) if w == warehouse_id]
        skus = [s for s in request.query_params.get("sku", "").split(",") if s]
        if skus:
            rows = [r for r in rows if r["sku"] in skus]
        return self._collection(request, rows, "warehouseitemid", endpoint="warehouseitems")

    async def transactions(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._post_transactions(request)
        params = request.query_params
        rows = self.state.transactions
        try:
            lo = int(params.get("warehousetransactionidfrom", "0"))
            hi = int(params.get("warehousetransactionidto", "0")) or None
            warehouse = int(params.get("warehouseid", "0")) or None
        except ValueError:
            return self.error(400, "Invalid filter")
        if lo or hi:
            ids = [r["warehousetransactionid"] for r in rows]
            rows = rows[bisect.bisect_left(ids, lo) : bisect.bisect_left(ids, hi) if hi else len(rows)]
        if warehouse:
            rows = [r for r in rows if r["warehouseid"] == warehouse]
        if params.get("datecreatedfrom"):
            since = int(params["datecreatedfrom"])
            rows = [r for r in rows if r["datecreated"] >= since]
        return self._collection(request, rows, "warehousetransactionid", endpoint="warehousetransactions")

    async def _post_transactions(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, list) or not body:
            return self.error(400, "Body must be a non-empty array")
        if len(body) > MAX_BATCH:
            return self.error(400, f"At most {MAX_BATCH} items per request")
        results: list[dict[str, Any]] = []  # the batch envelope (schemas/batchResponse.yaml)
        now = unix(self.world.clock.now())
        element_errors = False
        for element in body:
            problem = self._transaction_problem(element)
            if problem:
                results.append({"statuscode": 400, "return": problem})
                continue
            if self.faults.chance(self.faults.config.element_error_rate, "element_error"):
                # a fault setting (faults.element_error_rate): the element answered 5xx or 429 in the batch
                # envelope (schemas/batchResponse.yaml) and not applied; for a one-element call this shape
                # is not documented (the documented answer is the bare id), so it is a fault, not a behaviour
                statuses = self.faults.config.element_error_statuses
                status = statuses[self.faults.pick(len(statuses))]
                results.append({"statuscode": status, "return": ELEMENT_ERRORS[status]})
                element_errors = True
                continue
            txn = self.state.add_transaction(
                {
                    "warehouseid": element["warehouseid"],
                    "datecreated": now,
                    "transactiontype": element["transactiontype"],
                    "description": element.get("description"),
                    "orderdeliveryid": None,
                    "shipmentid": None,
                    "externalid": element.get("externalid"),
                    "reasoncode": element.get("reasoncode"),
                    "items": [
                        {"sku": i["sku"], "decimalquantity": qty(Decimal(str(i["decimalquantity"])))}
                        for i in element["items"]
                    ],
                }
            )
            results.append({"statuscode": 200, "return": txn["warehousetransactionid"]})
        if len(body) == 1 and results[0]["statuscode"] == 200:
            return JSONResponse(results[0]["return"])
        if len(body) == 1 and not element_errors:
            return self.error(400, results[0]["return"])
        return JSONResponse(results)

    def _transaction_problem(self, element: object) -> str | None:
        if not isinstance(element, dict):
            return "Element must be an object"
        warehouse_id = element.get("warehouseid")  # an id is a number, as transactiontype is
        warehouse = self.state.warehouses.get(warehouse_id) if isinstance(warehouse_id, int) else None
        if warehouse is None:
            return "Invalid warehouseid"
        if warehouse.get("warehousetype") == VIRTUAL:
            return "Transactions cannot be added to virtual warehouses"
        if element.get("transactiontype") in READ_ONLY_TYPES or not isinstance(element.get("transactiontype"), int):
            return "Invalid transactiontype (Sales, Refund and StockTaking are read only)"
        items = element.get("items")
        if not isinstance(items, list) or not items:
            return "items is required"
        known = {p["sku"] for p in self.state.products.values()}
        for item in items:
            if not isinstance(item, dict) or item.get("sku") not in known:
                return f"Invalid sku {item.get('sku') if isinstance(item, dict) else item!r}"
            try:
                Decimal(str(item["decimalquantity"]))
            except (KeyError, ArithmeticError, ValueError):
                return "Invalid decimalquantity"
        return None

    def orders(self, request: Request) -> Response:
        params = request.query_params
        rows = self.state.orders
        try:
            lo = int(params.get("orderidfrom", "0"))
            hi = int(params.get("orderidto", "0")) or None
        except ValueError:
            return self.error(400, "Invalid filter")
        if lo or hi:
            ids = [r["orderid"] for r in rows]
            rows = rows[bisect.bisect_left(ids, lo) : bisect.bisect_left(ids, hi) if hi else len(rows)]
        for field in ("externalid", "eshopid"):
            if params.get(field):
                wanted = set(params[field].split(","))
                rows = [r for r in rows if str(r.get(field)) in wanted]
        return self._collection(request, rows, "orderid", malformed_prefix="sitoo-order", endpoint="orders")

    async def post_order(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            return self.error(400, "Body must be an object")
        if not isinstance(body.get("ordertypeid"), int) or not isinstance(body.get("orderitems"), list):
            return self.error(400, "ordertypeid and orderitems are required")
        external = body.get("externalid")
        if external and any(o.get("externalid") == external for o in self.state.orders):
            return self.error(400, f"An order with externalid {external} already exists")
        for item in body["orderitems"]:
            if not item.get("productname") or not isinstance(item.get("quantity"), int):
                return self.error(400, "orderitems need productname and an integer quantity")
        computed = sum(Decimal(str(i.get("moneyrowprice") or 0)) * i["quantity"] for i in body["orderitems"])
        order = self.state.add_order(
            {
                "moneytotal_gross_all": f"{computed:.2f}",  # the service computes totals from the rows
                **body,
                "eshopid": self.state.site_id,
                "orderdate": body.get("orderdate") or unix(self.world.clock.now()),
                "orderstateid": body.get("orderstateid", 10),
                "paymentstateid": body.get("paymentstateid", 0),
                "payments": body.get("payments", []),
            }
        )
        return JSONResponse(order["orderid"])
