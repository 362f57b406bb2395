"""Cin7 Core objects: field names and casing as the vendor's blueprint gives them
(``shared/reference/vendor/dearinventory.apib``; the project's contract is ``contracts/cin7_core.yaml``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from returns_recon.models.types import Currency, Money, OptionalUtcTime, UtcTime


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SaleListRow(_Tolerant):
    SaleID: str = Field(min_length=1)
    OrderNumber: str | None = None
    Status: str | None = None
    CustomerReference: str | None = None
    ExternalID: str | None = None
    CustomerCurrency: Currency
    BaseCurrency: Currency | None = None
    Type: str | None = None
    OrderStatus: str | None = None
    CreditNoteNumber: str | None = None
    SourceChannel: str | None = None
    OrderDate: OptionalUtcTime = None
    Updated: UtcTime

    @property
    def natural_key(self) -> str:
        return self.SaleID

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {
            "stg_cin7__sales:list": [
                (
                    self.SaleID,
                    self.CustomerReference,
                    self.ExternalID,
                    self.OrderNumber,
                    self.Status,
                    self.Type,
                    self.OrderStatus,
                    None,
                    None,
                    self.BaseCurrency,
                    self.CustomerCurrency,
                    self.SourceChannel,
                    self.OrderDate,
                    self.Updated,
                    run_id,
                    self.CreditNoteNumber,
                    None,
                )
            ]
        }


class CreditNoteListRow(_Tolerant):
    """A ``GET /saleCreditNoteList`` row (apib L20551-L20687): the sale list's fields with the credit
    note's number and status and, in the vendor's example, the note's ``RestockStatus``."""

    SaleID: str = Field(min_length=1)
    CreditNoteNumber: str | None = None
    CreditNoteStatus: str | None = None
    RestockStatus: str | None = None
    Type: str | None = None
    Updated: UtcTime

    @property
    def natural_key(self) -> str:
        return f"{self.SaleID}|{self.CreditNoteNumber or ''}"

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {
            "stg_cin7__credit_note_list": [
                (
                    self.SaleID,
                    self.CreditNoteNumber or "",
                    self.CreditNoteStatus,
                    self.RestockStatus,
                    self.Type,
                    self.Updated,
                    run_id,
                )
            ]
        }


class Line(_Tolerant):
    ProductID: str | None = None
    SKU: str = Field(min_length=1)
    Name: str | None = None
    Quantity: Money
    Price: Money
    Discount: Money = Decimal(0)
    Tax: Money = Decimal(0)
    Total: Money
    TaxRule: str | None = None


class RestockLine(_Tolerant):
    """A restock line of a credit note (apib L30638). Without ``RestockLocation`` the stock comes
    back to ``Location``."""

    ProductID: str | None = None
    SKU: str = Field(min_length=1)
    Quantity: Money
    Location: str | None = None
    RestockLocation: str | None = None
    RestockDate: OptionalUtcTime = None

    @property
    def lands_at(self) -> str | None:
        return self.RestockLocation or self.Location


class Invoice(_Tolerant):
    InvoiceNumber: str = Field(min_length=1)
    Status: str
    Lines: list[Line] = Field(default_factory=list)


class CreditNote(_Tolerant):
    TaskID: str = Field(min_length=1)
    CreditNoteNumber: str | None = None
    CreditNoteInvoiceNumber: str | None = None
    Memo: str | None = None
    Status: str
    CreditNoteDate: OptionalUtcTime = None
    Lines: list[Line] = Field(default_factory=list)
    Restock: list[RestockLine] = Field(default_factory=list)
    TotalBeforeTax: Money = Decimal(0)
    Tax: Money = Decimal(0)
    Total: Money = Decimal(0)


class OrderPart(_Tolerant):
    SaleOrderNumber: str | None = None
    Status: str | None = None
    Lines: list[Line] = Field(default_factory=list)


class Sale(_Tolerant):
    """``GET /sale?ID=``: the sale with its order, invoices and credit notes."""

    ID: str = Field(min_length=1)
    CustomerReference: str | None = None
    ExternalID: str | None = None
    Status: str | None = None
    Type: str | None = None
    Location: str | None = None
    TaxCalculation: str | None = None
    BaseCurrency: Currency | None = None
    CustomerCurrency: Currency
    SourceChannel: str | None = None
    SaleOrderDate: OptionalUtcTime = None
    LastModifiedOn: UtcTime
    Order: OrderPart = Field(default_factory=OrderPart)
    Invoices: list[Invoice] = Field(default_factory=list)
    CreditNotes: list[CreditNote] = Field(default_factory=list)

    @property
    def natural_key(self) -> str:
        return self.ID

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        sid, currency = self.ID, self.CustomerCurrency
        last_note = self.CreditNotes[-1].CreditNoteNumber if self.CreditNotes else None
        lines = [
            (
                sid,
                "order",
                n,
                self.Order.Status,
                ln.ProductID,
                ln.SKU,
                ln.Name,
                ln.Quantity,
                ln.Price,
                ln.Discount,
                ln.Tax,
                ln.Total,
                ln.TaxRule,
            )
            for n, ln in enumerate(self.Order.Lines, 1)
        ] + [
            (
                sid,
                inv.InvoiceNumber,
                n,
                inv.Status,
                ln.ProductID,
                ln.SKU,
                ln.Name,
                ln.Quantity,
                ln.Price,
                ln.Discount,
                ln.Tax,
                ln.Total,
                ln.TaxRule,
            )
            for inv in self.Invoices
            for n, ln in enumerate(inv.Lines, 1)
        ]
        return {
            "stg_cin7__sales": [
                (
                    sid,
                    self.CustomerReference,
                    self.ExternalID,
                    self.Order.SaleOrderNumber,
                    self.Status,
                    self.Type,
                    self.Order.Status,
                    self.Location,
                    self.TaxCalculation,
                    self.BaseCurrency,
                    currency,
                    self.SourceChannel,
                    self.SaleOrderDate,
                    self.LastModifiedOn,
                    run_id,
                    last_note,
                    self.LastModifiedOn,
                )
            ],
            "stg_cin7__sale_lines": lines,
            "stg_cin7__credit_notes": [
                (
                    cn.TaskID,
                    sid,
                    cn.CreditNoteNumber,
                    cn.CreditNoteInvoiceNumber,
                    cn.Memo,
                    cn.Status,
                    cn.CreditNoteDate,
                    cn.TotalBeforeTax,
                    cn.Tax,
                    cn.Total,
                    currency,
                )
                for cn in self.CreditNotes
            ],
            "stg_cin7__credit_note_lines": [
                (
                    cn.TaskID,
                    n,
                    sid,
                    ln.ProductID,
                    ln.SKU,
                    ln.Quantity,
                    ln.Price,
                    ln.Discount,
                    ln.Tax,
                    ln.Total,
                    ln.TaxRule,
                )
                for cn in self.CreditNotes
                for n, ln in enumerate(cn.Lines, 1)
            ],
            "stg_cin7__restocks": [
                (cn.TaskID, n, sid, r.ProductID, r.SKU, r.Quantity, r.Location, r.lands_at, r.RestockDate)
                for cn in self.CreditNotes
                for n, r in enumerate(cn.Restock, 1)
            ],
        }


class Product(_Tolerant):
    ID: str = Field(min_length=1)
    SKU: str = Field(min_length=1)
    Name: str | None = None
    Status: str | None = None
    Type: str | None = None

    @property
    def natural_key(self) -> str:
        return self.ID

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {"stg_cin7__products": [(self.ID, self.SKU, self.Name, self.Status, self.Type, run_id)]}


class Location(_Tolerant):
    ID: str = Field(min_length=1)
    Name: str = Field(min_length=1)
    IsDeprecated: bool = False

    @property
    def natural_key(self) -> str:
        return self.ID

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {"stg_cin7__locations": [(self.ID, self.Name, self.IsDeprecated, run_id)]}


class Availability(_Tolerant):
    ID: str = Field(min_length=1)
    SKU: str = Field(min_length=1)
    Location: str = Field(min_length=1)
    Bin: str | None = None
    Batch: str | None = None
    OnHand: Money
    Allocated: Money = Decimal(0)
    Available: Money = Decimal(0)

    @property
    def natural_key(self) -> str:
        return f"{self.ID}|{self.Location}|{self.Bin or ''}|{self.Batch or ''}"

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {
            "stg_cin7__availability": [
                (self.ID, self.Location, self.SKU, self.OnHand, self.Allocated, self.Available, run_id)
            ]
        }


class StockTransferRow(_Tolerant):
    TaskID: str = Field(min_length=1)
    Number: str | None = None
    Status: str
    FromLocation: str | None = None
    ToLocation: str | None = None
    Reference: str | None = None
    CompletionDate: OptionalUtcTime = None
    LastModifiedOn: OptionalUtcTime = None

    @property
    def natural_key(self) -> str:
        return self.TaskID

    def staging_rows(self, run_id: str) -> dict[str, list[tuple]]:
        return {
            "stg_cin7__stock_transfers": [
                (
                    self.TaskID,
                    self.Number,
                    self.Status,
                    self.FromLocation,
                    self.ToLocation,
                    self.Reference,
                    self.CompletionDate,
                    self.LastModifiedOn,
                    run_id,
                )
            ]
        }
