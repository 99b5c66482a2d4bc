"""The 客户通 demo app's SQL schema: SQLAlchemy Core tables for SQLite, PostgreSQL and MariaDB (utf8mb4).

The app is a property-management CRM in the style of 客户通/物业通 (2021 policy): a property company's
residents (住户) and their houses, repair tickets (报修), visitor passes (访客通行证), property-fee
payments, hotline call recordings, WeCom (企业微信) external contacts and the app's network logs.

Its shape differs from 微聊客 on purpose:

- residents point at each other (``family_of_id``: a relative's row points at the household's owner);
- a house is shared by several residents through the many-to-many ``house_residents``;
- repair tickets carry free text that mentions relatives and neighbours by name and phone, and a
  ``contact_name``/``contact_phone`` of whoever reported the problem (not always the ticket's resident);
- a visitor pass is registered by one resident for a visitor known only by name and phone (who may be a
  resident of another house);
- calls are matched to nobody but a phone number (``caller_phone``) and point at a recording file in
  object storage (``file_path``);
- a WeCom contact may exist before the resident is linked (``resident_id`` NULL, matched by ``mobile``).

Times are naive Beijing time. Every table has an explicit integer id so the generator can bulk-load.
Foreign keys are real.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

metadata = MetaData()


def _id() -> Column[int]:
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)


def _fk(name: str, target: str, nullable: bool = False) -> Column[int]:
    return Column(name, BigInteger().with_variant(Integer, "sqlite"), ForeignKey(target), nullable=nullable)


residents = Table(  # 住户: the property company's residents (业主及家属), each with a 物业通 account
    "residents", metadata, _id(),
    Column("phone", String(11), unique=True),  # 手机号 (login); NULL once the account is cancelled
    Column("name", String(32)),
    Column("id_number", String(18)),  # 居民身份证号码 (入住登记)
    _fk("family_of_id", "residents.id", nullable=True),  # a relative's row points at the household owner
    Column("relation", String(8)),  # 本人 / 配偶 / 子女 / 父母: relation to family_of_id
    Column("status", String(12), nullable=False),  # active / cancelled
    Column("created_at", DateTime, nullable=False),
    Index("ix_residents_family_of", "family_of_id"),
    **MYSQL,
)

houses = Table(  # 房屋: one flat, shared by the residents who live there
    "houses", metadata, _id(),
    Column("address", String(200)),  # readable address (province … room)
    Column("area_sqm", Numeric(7, 2), nullable=False),
    Column("created_at", DateTime, nullable=False),
    **MYSQL,
)

house_residents = Table(  # many-to-many: who lives in which house
    "house_residents", metadata, _id(),
    _fk("house_id", "houses.id"),
    _fk("resident_id", "residents.id"),
    Column("role", String(8), nullable=False),  # 业主 / 家属 / 租户
    Column("since", Date, nullable=False),
    Index("ix_house_residents_house", "house_id"),
    Index("ix_house_residents_resident", "resident_id"),
    **MYSQL,
)

repair_tickets = Table(  # 报修工单
    "repair_tickets", metadata, _id(),
    _fk("resident_id", "residents.id"),  # the account that filed the ticket
    _fk("house_id", "houses.id"),
    Column("contact_name", String(32)),  # whoever reported it (often a relative, sometimes a neighbour)
    Column("contact_phone", String(11)),
    Column("description", Text, nullable=False),  # free text, mentions other people by name and phone
    Column("status", String(12), nullable=False),  # open / assigned / done / closed
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_repair_tickets_resident", "resident_id"),
    Index("ix_repair_tickets_contact_phone", "contact_phone"),
    Index("ix_repair_tickets_updated_at", "updated_at"),
    **MYSQL,
)

visitor_passes = Table(  # 访客通行证: registered by a resident for a visitor
    "visitor_passes", metadata, _id(),
    _fk("resident_id", "residents.id"),  # the host who registered the pass
    Column("visitor_name", String(32)),
    Column("visitor_phone", String(11)),
    Column("plate_no", String(10)),  # 车牌 when the visitor drives in
    Column("visit_date", Date),
    Column("created_at", DateTime, nullable=False),
    Index("ix_visitor_passes_resident", "resident_id"),
    Index("ix_visitor_passes_visitor_phone", "visitor_phone"),
    **MYSQL,
)

payments = Table(  # 物业费、停车费缴费记录: transaction records, kept ≥ 3 years from paid_at (电子商务法)
    "payments", metadata, _id(),
    Column("order_no", String(24), nullable=False, unique=True),
    _fk("resident_id", "residents.id"),
    _fk("house_id", "houses.id"),
    Column("fee_type", String(8), nullable=False),  # 物业费 / 停车费 / 水电代缴
    Column("amount", Numeric(10, 2), nullable=False),
    Column("pay_channel", String(8), nullable=False),  # wechat / alipay / bank
    Column("payer_name", String(32), nullable=False),  # name on the receipt
    Column("paid_at", DateTime, nullable=False),
    Index("ix_payments_resident", "resident_id"),
    **MYSQL,
)

calls = Table(  # 客服热线通话: matched to nobody but the caller's number
    "calls", metadata, _id(),
    Column("caller_phone", String(11), nullable=False),  # the number the call came from (a record of the past)
    Column("direction", String(3), nullable=False),  # in / out
    Column("duration_s", Integer, nullable=False),
    Column("file_path", String(200), nullable=False),  # the recording in object storage
    Column("started_at", DateTime, nullable=False),
    Index("ix_calls_caller_phone", "caller_phone"),
    **MYSQL,
)

wecom_contacts = Table(  # 企业微信外部联系人 of the property company's staff
    "wecom_contacts", metadata, _id(),
    _fk("resident_id", "residents.id", nullable=True),  # NULL until staff link the contact to a resident
    Column("external_userid", String(32), nullable=False),  # WeCom's external contact id (wm…)
    Column("name", String(32)),  # the staff member's remark name for the contact
    Column("mobile", String(11)),
    Column("staff_userid", String(32), nullable=False),  # the property company's employee in WeCom
    Column("added_at", DateTime, nullable=False),
    Index("ix_wecom_contacts_resident", "resident_id"),
    Index("ix_wecom_contacts_mobile", "mobile"),
    **MYSQL,
)

network_logs = Table(  # 网络日志 of the 物业通 app: kept ≥ 6 months from the log time (网络安全法 21)
    "network_logs", metadata, _id(),
    _fk("resident_id", "residents.id"),
    Column("ip", String(45), nullable=False),
    Column("path", String(64), nullable=False),
    Column("logged_at", DateTime, nullable=False),
    Index("ix_network_logs_resident", "resident_id"),
    **MYSQL,
)

#: Tables in dependency order (parents first): the order to load, the reverse order to delete.
TABLES: tuple[Table, ...] = (
    residents, houses, house_residents, repair_tickets, visitor_passes, payments, calls, wecom_contacts,
    network_logs,
)
