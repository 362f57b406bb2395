"""Master data of a generated merchant: products, Cin7 locations, Sitoo stores and warehouses,
return points and the location map. Small and deterministic for a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

CURRENCIES = (("EUR", 0.21, 0.6), ("GBP", 0.20, 0.25), ("SEK", 0.25, 0.15))
COLORS = ("BLK", "WHT", "NVY", "RED")
SIZES = ("S", "M", "L", "XL")


def det_hex(rng: random.Random) -> str:
    """A random (version-4 shaped) UUID as 32 hex digits, reproducible for the generator's seed."""
    value = rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)
    value = value & ~(0xC000 << 48) | (0x8000 << 48)
    return f"{value:032x}"


def det_uuid(rng: random.Random) -> str:
    h = det_hex(rng)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Product:
    sku: str
    name: str
    cin7_id: str
    sitoo_id: int | None  # None: sold online only, unknown to Sitoo
    price: float  # unit price before tax
    cost: float


@dataclass
class Warehouse:
    name: str
    return_point: str
    sellable_id: str
    holding_id: str

    @property
    def sellable(self) -> str:
        return self.name

    @property
    def holding(self) -> str:
        return f"{self.name} Returns Hold"


@dataclass
class Store:
    storeid: int
    name: str
    return_point: str
    warehouse_id: int


@dataclass
class Catalog:
    products: list[Product] = field(default_factory=list)
    web_only: list[Product] = field(default_factory=list)
    warehouses: list[Warehouse] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    virtual_warehouse_id: int = 90
    unmapped_return_points: list[tuple[str, str]] = field(default_factory=list)

    @property
    def all_products(self) -> list[Product]:
        return self.products + self.web_only


def build_catalog(rng: random.Random, returns: int) -> Catalog:
    catalog = Catalog()
    styles = max(10, min(2500, returns // 40))
    for style in range(styles):
        base = round(rng.uniform(15, 120), 2)
        for color in rng.sample(COLORS, 2):
            for size in SIZES[:3] if style % 3 else SIZES:
                sku = f"ST{style:04d}-{color}-{size}"
                name = f"Style {style:04d} {color} {size}"
                product = Product(sku, name, det_uuid(rng), None, base, round(base * 0.4, 2))
                catalog.products.append(product)
    for index, product in enumerate(catalog.products):
        product.sitoo_id = 1000 + index
    for index in range(max(3, styles // 20)):
        sku = f"WEB{index:03d}-ONLINE"
        catalog.web_only.append(
            Product(sku, f"Online exclusive {index:03d}", det_uuid(rng), None, round(rng.uniform(20, 90), 2), 10.0)
        )
    for name, rp in (("Main Warehouse", "rp-wh-main"), ("North Warehouse", "rp-wh-north")):
        catalog.warehouses.append(Warehouse(name, rp, det_uuid(rng), det_uuid(rng)))
    for storeid, city in enumerate(("Madrid Gran Via", "Barcelona Diagonal", "Valencia Colon", "Sevilla Sierpes"), 1):
        catalog.stores.append(Store(storeid, city, f"rp-store-{storeid}", storeid))
    catalog.unmapped_return_points = [
        ("rp-store-7", "Madrid Gran Via Pop-Up"),
        ("rp-wh-east", "East Warehouse"),
    ]
    return catalog


def location_map_rows(catalog: Catalog) -> list[dict]:
    rows = [
        {
            "return_point_id": w.return_point,
            "return_point_name": w.name,
            "kind": "warehouse",
            "sitoo_warehouse_id": "",
            "cin7_holding_location": w.holding,
            "cin7_sellable_location": w.sellable,
        }
        for w in catalog.warehouses
    ]
    rows += [
        {
            "return_point_id": s.return_point,
            "return_point_name": s.name,
            "kind": "store",
            "sitoo_warehouse_id": str(s.warehouse_id),
            "cin7_holding_location": "",
            "cin7_sellable_location": "",
        }
        for s in catalog.stores
    ]
    return rows


def cin7_products(catalog: Catalog) -> list[dict]:
    return [
        {
            "ID": p.cin7_id,
            "SKU": p.sku,
            "Name": p.name,
            "Barcode": None,
            "Type": "Stock",
            "CostingMethod": "FIFO",
            "Status": "Active",  # apib L5239: Active, Setup required, Deprecated
            "UOM": "Item",
            "AverageCost": p.cost,
            "Sellable": True,
            "PriceTier1": p.price,
            "LastModifiedOn": "2026-01-01T00:00:00",
        }
        for p in catalog.all_products
    ]


def cin7_locations(catalog: Catalog) -> list[dict]:
    rows = []
    for w in catalog.warehouses:
        for location_id, name in ((w.sellable_id, w.sellable), (w.holding_id, w.holding)):
            rows.append(
                {
                    "ID": location_id,
                    "Name": name,
                    "IsDefault": name == "Main Warehouse",
                    "IsDeprecated": False,
                    "Bins": [],
                    "ParentID": None,
                    "ParentName": None,
                }
            )
    return rows


INACTIVE_EVERY = 12  # one Sitoo product in twelve is inactive


def sitoo_products(catalog: Catalog) -> list[dict]:
    return [
        {
            "productid": p.sitoo_id,
            "sku": p.sku,
            "title": p.name,
            "barcode": None,
            "barcodealiases": [],
            "variantparentid": None,
            "moneyprice": f"{p.price * 1.21:.2f}",
            "vatvalue": 21,
            "activepos": True,
            "stockcountenable": True,
            "datemodified": 1767225600,
            # discontinued in the shop yet still returned: listed only with includeinactive=true
            **({"active": False} if n % INACTIVE_EVERY == INACTIVE_EVERY - 1 else {}),
        }
        for n, p in enumerate(catalog.products)
    ]


def sitoo_stores_and_warehouses(catalog: Catalog) -> tuple[list[dict], list[dict]]:
    stores = [
        {"storeid": s.storeid, "eshopid": 1, "storetype": 10, "name": s.name, "externalid": s.return_point}
        for s in catalog.stores
    ]
    warehouses = [
        {
            "warehouseid": s.warehouse_id,
            "warehousetype": 10,
            "usetype": 10,
            "storeid": s.storeid,
            "sellable": True,
            "currencycode": "EUR",
            "name": f"{s.name} stock",
            "externalid": f"WH-{s.storeid}",
        }
        for s in catalog.stores
    ]
    warehouses.append(
        {
            "warehouseid": catalog.virtual_warehouse_id,
            "warehousetype": 20,
            "usetype": 10,
            "storeid": None,
            "sellable": True,
            "currencycode": "EUR",
            "name": "Webshop (virtual)",
            "externalid": "WEB",
        }
    )
    return stores, warehouses
