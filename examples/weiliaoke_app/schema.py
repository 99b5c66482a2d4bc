"""The demo app's SQL schema: SQLAlchemy Core tables for SQLite, PostgreSQL and MariaDB (utf8mb4).

The app is modelled on 微聊客 (2022): a platform for property sales agents (置业顾问). Times are naive
Beijing time, as many Chinese apps store them. Every table has an explicit integer id so the generator can
bulk-load with COPY / multi-row INSERT. Foreign keys are real: the rights engine has to delete children
before parents.

Deliberately absent: device model and OS, a user's search history, passwords. The 2022 declaration does
not collect them (see README.md, "Findings").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
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


agents = Table(
    "agents", metadata, _id(),
    Column("phone", String(11), unique=True),  # 注册手机号; NULL once the account is cancelled
    Column("name", String(32)),
    Column("id_number", String(18)),  # 居民身份证号码
    Column("face_verify_result", String(8)),  # passed / failed, from the 58 auth SDK
    Column("face_ref", String(64)),  # the SDK's reference to the face verification (a hash, never an image)
    Column("bank_card", String(19)),
    Column("bank_reserved_phone", String(11)),
    Column("avatar_url", String(200)),
    Column("status", String(12), nullable=False),  # active / cancelled
    Column("created_at", DateTime, nullable=False),
    **MYSQL,
)

properties = Table(  # 楼盘: public listing data, not PI
    "properties", metadata, _id(),
    Column("name", String(64), nullable=False),
    Column("province", String(16), nullable=False),
    Column("city", String(16), nullable=False),
    Column("district", String(16), nullable=False),
    Column("address", String(128), nullable=False),
    Column("developer", String(64), nullable=False),
    Column("avg_price", Integer, nullable=False),  # 元/平方米
    Column("created_at", DateTime, nullable=False),
    **MYSQL,
)

property_bindings = Table(  # 绑定楼盘: the agent proves they sell this property
    "property_bindings", metadata, _id(),
    _fk("agent_id", "agents.id"),
    _fk("property_id", "properties.id"),
    Column("real_name", String(32), nullable=False),
    Column("id_number", String(18), nullable=False),
    Column("contact_phone", String(11), nullable=False),
    Column("business_card_url", String(200)),
    Column("work_badge_url", String(200), nullable=False),
    Column("id_card_photo_url", String(200)),
    Column("status", String(12), nullable=False),  # pending / verified / rejected
    Column("created_at", DateTime, nullable=False),
    Index("ix_property_bindings_agent", "agent_id"),
    **MYSQL,
)

posts = Table(  # 拍现场、案场采盘、行业圈、问答广场
    "posts", metadata, _id(),
    _fk("agent_id", "agents.id"),
    _fk("property_id", "properties.id", nullable=True),
    Column("channel", String(8), nullable=False),
    Column("body", Text, nullable=False),
    Column("photo_urls", Text),  # JSON list of image URLs
    Column("created_at", DateTime, nullable=False),
    Index("ix_posts_agent", "agent_id"),
    **MYSQL,
)

reviews = Table(  # 楼盘点评
    "reviews", metadata, _id(),
    _fk("agent_id", "agents.id"),
    _fk("property_id", "properties.id"),
    Column("rating", SmallInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("photo_urls", Text),
    Column("created_at", DateTime, nullable=False),
    Index("ix_reviews_agent", "agent_id"),
    **MYSQL,
)

customers = Table(  # the agents' clients: other people's PI, held for the chat and appointments
    "customers", metadata, _id(),
    _fk("agent_id", "agents.id"),
    Column("name", String(32), nullable=False),
    Column("phone", String(11)),
    Column("created_at", DateTime, nullable=False),
    Index("ix_customers_agent", "agent_id"),
    **MYSQL,
)

chat_messages = Table(  # 微聊
    "chat_messages", metadata, _id(),
    _fk("agent_id", "agents.id"),
    _fk("customer_id", "customers.id"),
    Column("direction", String(3), nullable=False),  # out: agent → customer; in: customer → agent
    Column("msg_type", String(8), nullable=False),  # text / image / location
    Column("body", Text),
    Column("lat", Double),
    Column("lng", Double),
    Column("sent_at", DateTime, nullable=False),
    Index("ix_chat_messages_agent", "agent_id"),
    Index("ix_chat_messages_customer", "customer_id"),
    **MYSQL,
)

orders = Table(  # 微商城订单
    "orders", metadata, _id(),
    Column("order_no", String(24), nullable=False, unique=True),
    _fk("agent_id", "agents.id"),
    Column("product_name", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount", Numeric(10, 2), nullable=False),
    Column("pay_channel", String(8), nullable=False),  # wechat / alipay / iap
    Column("pay_card", String(19)),  # masked card number, e.g. 622202*********1234
    Column("consignee_name", String(32)),  # physical goods only
    Column("consignee_phone", String(11)),
    Column("consignee_address", String(200)),
    Column("status", String(12), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("paid_at", DateTime),
    Index("ix_orders_agent", "agent_id"),
    **MYSQL,
)

invoices = Table(
    "invoices", metadata, _id(),
    _fk("order_id", "orders.id"),
    Column("title_type", String(8), nullable=False),  # personal / company
    Column("title", String(100), nullable=False),  # 发票抬头
    Column("tax_no", String(20)),  # 纳税人识别号 (company titles)
    Column("amount", Numeric(10, 2), nullable=False),
    Column("issued_at", DateTime, nullable=False),
    Index("ix_invoices_order", "order_id"),
    **MYSQL,
)

devices = Table(  # 设备识别码, collected for security (三、(二)8)
    "devices", metadata, _id(),
    _fk("agent_id", "agents.id"),
    Column("device_id", String(32), nullable=False),  # the app's install id
    Column("imei", String(15)),
    Column("oaid", String(64)),
    Column("first_seen_at", DateTime, nullable=False),
    Index("ix_devices_agent", "agent_id"),
    **MYSQL,
)

login_logs = Table(  # 网络日志: kept ≥ 6 months (网络安全法 21)
    "login_logs", metadata, _id(),
    _fk("agent_id", "agents.id"),
    Column("ip", String(45), nullable=False),
    Column("device_id", String(32), nullable=False),  # a copy, so logs survive the device row
    Column("result", String(12), nullable=False),
    Column("logged_in_at", DateTime, nullable=False),
    Index("ix_login_logs_agent", "agent_id"),
    **MYSQL,
)

ip_logs = Table(  # 仅浏览功能: visits without an account, kept ≤ 1 day (六、(一))
    "ip_logs", metadata, _id(),
    Column("ip", String(45), nullable=False),
    Column("path", String(64), nullable=False),
    Column("visited_at", DateTime, nullable=False),
    Index("ix_ip_logs_ip", "ip"),
    Index("ix_ip_logs_visited_at", "visited_at"),
    **MYSQL,
)

prize_records = Table(  # 营销活动: prize delivery and tax withholding
    "prize_records", metadata, _id(),
    _fk("agent_id", "agents.id"),
    Column("campaign", String(32), nullable=False),
    Column("prize", String(32), nullable=False),
    Column("winner_name", String(32), nullable=False),
    Column("phone", String(11), nullable=False),
    Column("address", String(200)),
    Column("id_number", String(18)),  # only for cash prizes (代缴个人所得税)
    Column("created_at", DateTime, nullable=False),
    Index("ix_prize_records_agent", "agent_id"),
    **MYSQL,
)

#: Tables in dependency order (parents first): the order to load, the reverse order to delete.
TABLES: tuple[Table, ...] = (
    agents, properties, property_bindings, posts, reviews, customers, chat_messages, orders, invoices, devices,
    login_logs, ip_logs, prize_records,
)
