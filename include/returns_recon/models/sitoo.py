"""Sitoo objects (money as 2-decimal strings, quantities as 3-decimal strings, Unix seconds)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from returns_recon.models.types import Money, UtcTime


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Product(_Tolerant):
    productid: int
    sku: str = Field(min_length=1)
    title: str | None = None
    activepos: bool | None = None

    @property
    def natural_key(self) -> str:
        return str(self.productid)

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {"stg_sitoo__products": [(self.productid, self.sku, self.title, self.activepos, run_id)]}


class Warehouse(_Tolerant):
    warehouseid: int
    warehousetype: int
    usetype: int | None = None
    storeid: int | None = None
    sellable: bool | None = None
    name: str | None = None
    externalid: str | None = None

    @property
    def natural_key(self) -> str:
        return str(self.warehouseid)

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {
            "stg_sitoo__warehouses": [
                (
                    self.warehouseid,
                    self.warehousetype,
                    self.usetype,
                    self.storeid,
                    self.sellable,
                    self.name,
                    self.externalid,
                    run_id,
                )
            ]
        }


class Store(_Tolerant):
    storeid: int
    name: str | None = None
    externalid: str | None = None

    @property
    def natural_key(self) -> str:
        return str(self.storeid)

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {"stg_sitoo__stores": [(self.storeid, self.name, self.externalid, run_id)]}


class WarehouseItem(_Tolerant):
    warehouseid: int
    sku: str = Field(min_length=1)
    decimaltotal: Money
    decimalavailable: Money | None = None
    datelastmodified: UtcTime | None = None

    @property
    def natural_key(self) -> str:
        return f"{self.warehouseid}|{self.sku}"

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {
            "stg_sitoo__warehouse_items": [
                (self.warehouseid, self.sku, self.decimaltotal, self.decimalavailable, self.datelastmodified, run_id)
            ]
        }


class TransactionItem(_Tolerant):
    sku: str = Field(min_length=1)
    decimalquantity: Money


class WarehouseTransaction(_Tolerant):
    warehousetransactionid: int
    warehouseid: int
    transactiontype: int
    externalid: str | None = None
    description: str | None = None
    reasoncode: str | None = None
    datecreated: UtcTime
    items: list[TransactionItem] = Field(min_length=1)

    @property
    def natural_key(self) -> str:
        return str(self.warehousetransactionid)

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        tid = self.warehousetransactionid
        return {
            "stg_sitoo__warehouse_transactions": [
                (
                    tid,
                    self.warehouseid,
                    self.transactiontype,
                    self.externalid,
                    self.description,
                    self.reasoncode,
                    self.datecreated,
                    run_id,
                )
            ],
            "stg_sitoo__warehouse_transaction_items": [
                (tid, n, i.sku, i.decimalquantity) for n, i in enumerate(self.items, 1)
            ],
        }


class OrderItem(_Tolerant):
    sku: str | None = None
    productname: str | None = None
    quantity: int
    moneyitemtotal_net: Money | None = None
    moneyitemtotal_vat: Money | None = None


class Payment(_Tolerant):
    name: str | None = None
    moneyamount: Money


class Order(_Tolerant):
    orderid: int
    externalid: str | None = None
    creditorderid: int | None = None
    orderdate: UtcTime
    orderstateid: int | None = None
    paymentstateid: int | None = None
    ordertypeid: int | None = None
    warehouseid: int | None = None
    currencycode: str | None = None
    moneytotal_gross_all: Money
    orderitems: list[OrderItem]
    payments: list[Payment] = Field(default_factory=list)
    additionaldata: dict[str, Any] | None = None

    @property
    def natural_key(self) -> str:
        return str(self.orderid)

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        paid = sum((p.moneyamount for p in self.payments), Decimal(0))
        return {
            "stg_sitoo__orders": [
                (
                    self.orderid,
                    self.externalid,
                    self.creditorderid,
                    self.orderdate,
                    self.orderstateid,
                    self.paymentstateid,
                    self.ordertypeid,
                    self.warehouseid,
                    self.currencycode,
                    self.moneytotal_gross_all,
                    paid,
                    run_id,
                )
            ],
            "stg_sitoo__order_items": [
                (self.orderid, n, i.sku, i.productname, i.quantity, i.moneyitemtotal_net, i.moneyitemtotal_vat)
                for n, i in enumerate(self.orderitems, 1)
            ],
        }
