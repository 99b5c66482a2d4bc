"""Column classification (数据库字段识别): propose a PI item for every column of a database.

Evidence comes from three places, each named in the proposal's reasons: the column's name (English, pinyin and
pinyin initials: ``mobile``, ``shouji``, ``sfzh``, ...), its SQL type, and up to ``sample_size`` sampled
values run through the scanner. Sampled values never leave this module unmasked: proposals carry display
masks only (``yinsi.protect.masking``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, inspect, select
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.types import LargeBinary, TypeEngine

from yinsi.scan.engine import scan_text
from yinsi.scan.registry import PATTERN_TYPES
from yinsi.storage.engine import CONNECT_TIMEOUT, display_url, parse_url
from yinsi.storage.errors import DatabaseUnavailable, InvalidDatabaseUrl

NOT_PI = "not_pi"

#: Scanner type → PI item id (domain/data/pi_items.yaml). ``None``: the item list has no such item yet.
ITEM_OF_TYPE: dict[str, str | None] = {
    "mobile_phone": "contact.mobile",
    "landline_phone": "contact.landline",
    "id_card": "identity.id_card_number",
    "bank_card": "property.bank_card",
    "email": "contact.email",
    "ip_address": "online.ip_address",
    "imei": "device.identifiers",
    "mac_address": "device.mac_address",
    "passport": "identity.passport_number",
    "license_plate": "other.license_plate",
    "qq": "contact.method",
    "wechat_id": "account.wechat_id",
    "person_name": "basic.name",
    "address": "basic.home_address",
}

#: Column-name rules, checked in order on the name's lower-cased tokens joined by "_" (``userMobile`` →
#: ``user_mobile``). Each: pattern, PI item, scanner type whose values confirm it (or None), confidence.
NAME_RULES: tuple[tuple[str, str, str | None, float], ...] = (
    (r"(^|_)(id_?card|idcard|id_?no|idno|id_?number|sfz|sfzh|sfzhm|shenfenzheng|identity_?(no|number|card)|cert_?no|"
     r"certificate_?no|citizen_?id)($|_)", "identity.id_card_number", "id_card", 0.8),
    (r"(^|_)(passport|huzhao|hzh)($|_|no|_no)", "identity.passport_number", "passport", 0.8),
    (r"(^|_)(bank_?card|card_?no|card_?number|cardno|bank_?account|yhk|yhkh|yinhangka|account_?no)($|_)",
     "property.bank_card", "bank_card", 0.7),
    (r"(^|_)(mobile|mobile_?phone|cell_?phone|cellphone|phone|phone_?no|phone_?number|tel|telephone|shouji|sjh|sjhm|"
     r"lxdh|dianhua|contact_?phone)($|_)", "contact.mobile", "mobile_phone", 0.7),
    (r"(^|_)(e_?mail|mail|youxiang|yx)($|_)", "contact.email", "email", 0.8),
    (r"(^|_)(ip|ip_?addr|ip_?address|ipv4|ipv6|remote_?addr|client_?ip|login_?ip)($|_)", "online.ip_address",
     "ip_address", 0.8),
    (r"(^|_)(imei|meid|imsi|idfa|oaid|android_?id|device_?id|udid)($|_)", "device.identifiers", "imei", 0.8),
    (r"(^|_)(mac|mac_?addr|mac_?address)($|_)", "device.mac_address", "mac_address", 0.8),
    (r"(^|_)(wechat|weixin|wx|wx_?id|wechat_?id|open_?id|openid|union_?id|unionid)($|_)", "account.wechat_id",
     "wechat_id", 0.7),
    (r"(^|_)(qq|qq_?no|qq_?number)($|_)", "contact.method", "qq", 0.7),
    (r"(^|_)(shipping|receiver|delivery|consignee|shouhuo)_?(address|addr|dizhi)($|_)", "contact.postal_address",
     "address", 0.8),
    (r"(^|_)(address|addr|dizhi|home_?address|residence|zhuzhi|jtzz)($|_)", "basic.home_address", "address", 0.7),
    (r"(^|_)(consignee|receiver|shouhuoren)(_?name)?($|_)", "contact.consignee_name", "person_name", 0.7),
    (r"(^|_)(real_?name|realname|full_?name|fullname|xingming|xm|name_?cn|contact_?name|true_?name|"
     r"person_?name)($|_)", "basic.name", "person_name", 0.8),
    (r"^name$", "basic.name", "person_name", 0.4),
    (r"(^|_)(nick_?name|nickname|nicheng)($|_)", "basic.nickname", None, 0.7),
    (r"(^|_)(user_?name|username|login_?name|account)($|_)", "account.username", None, 0.6),
    (r"(^|_)(password|passwd|pwd|mima)($|_)", "account.password", None, 0.8),
    (r"(^|_)(birthday|birth_?date|birth|dob|csrq|shengri)($|_)", "basic.birth_date", None, 0.8),
    (r"(^|_)(gender|sex|xingbie|xb)($|_)", "basic.gender", None, 0.7),
    (r"(^|_)(age|nianling)($|_)", "basic.age", None, 0.6),
    (r"(^|_)(lat|lng|lon|latitude|longitude|geo|location|gps)($|_)", "location.precise", None, 0.7),
    (r"(^|_)(avatar|head_?img|touxiang)($|_)", "basic.avatar", None, 0.7),
    (r"(^|_)(zip|zipcode|postcode|postal_?code|youbian)($|_)", "contact.postal_code", None, 0.6),
)
_COMPILED_RULES = [(re.compile(p), item, t, c) for p, item, t, c in NAME_RULES]

#: Column names that say the values are look-alikes (order, invoice, waybill, student numbers…): values shaped like
#: phones or IDs in such a column are those numbers, the column's name is their label (as 订单号 before a value).
_LOOKALIKE_NAME = re.compile(
    r"(^|_)(order|orders|order_?(no|id|number|sn)|invoice|fapiao|tracking|waybill|express|serial|sku|barcode|"
    r"student|xuehao|xh|dingdan|ddh|trade_?no|txn|transaction|batch|coupon|staff_?no|emp_?no|gonghao)($|_)")
_LOOKALIKE_NAME_CN = ("订单号", "订单编号", "单号", "运单号", "快递单号", "流水号", "交易号", "发票号码", "发票号",
                      "发票代码", "学号", "工号", "序列号", "批次号", "券码", "条码", "合同号")


def lookalike_column(column: str) -> bool:
    """True when the column's name labels its values as order/invoice/waybill/student… numbers."""
    name = column.strip()
    if name.endswith(_LOOKALIKE_NAME_CN):
        return True
    return rule_for_name(column) is None and _LOOKALIKE_NAME.search(name_tokens(column)) is not None

#: Types whose values an order/invoice/student number can look like.
_NUMBER_TYPES = frozenset({"mobile_phone", "landline_phone", "id_card", "bank_card", "imei", "qq"})

#: A sampled value counts for a type when the type's results cover at least this share of its characters.
_COVER = 0.8
#: Share of sampled values needed before values alone propose a type.
_VALUE_SHARE = 0.6


@dataclass(frozen=True)
class ColumnProposal:
    """A proposed data-map entry for one column (``pi_item`` is a PI item id, ``not_pi``, or ``None`` when the
    value is PI of a type the item list lacks)."""

    table: str
    column: str
    sql_type: str
    pi_item: str | None
    pi_type: str | None
    confidence: float
    reasons: tuple[str, ...]
    sampled: int = 0
    matched: int = 0
    masked_samples: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "sql_type": self.sql_type,
            "pi_item": self.pi_item,
            "pi_type": self.pi_type,
            "confidence": round(self.confidence, 3),
            "reasons": list(self.reasons),
            "sampled": self.sampled,
            "matched": self.matched,
            "masked_samples": list(self.masked_samples),
        }


def name_tokens(column: str) -> str:
    """``userMobileNo`` / ``User-Mobile no`` → ``user_mobile_no``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column)
    return "_".join(t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t)


def rule_for_name(column: str) -> tuple[str, str | None, float] | None:
    """The first column-name rule matching ``column``: (PI item, confirming scanner type, confidence)."""
    tokens = name_tokens(column)
    for regex, item, pi_type, confidence in _COMPILED_RULES:
        if regex.search(tokens):
            return item, pi_type, confidence
    return None


_HAN_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$|^[\u4e00-\u9fff]{1,2}[·•][\u4e00-\u9fff]{1,6}$")


def value_type(value: str) -> str | None:
    """The scanner type that covers (most of) a single value, or ``None``."""
    text = value.strip()
    if not text:
        return None
    results = scan_text(text, types=PATTERN_TYPES)
    covered: Counter[str] = Counter()
    for r in results:
        covered[r.type] += r.end - r.start
    if covered:
        pi_type, chars = covered.most_common(1)[0]
        if chars >= _COVER * len(text):
            return pi_type
    if _looks_like_address(text):
        return "address"
    if _looks_like_person_name(text):
        return "person_name"
    return None


_ADDRESS = re.compile(r"(省|市|区|县|镇|乡|村|路|街|道|巷|弄|号|楼|室|栋|单元|小区|大厦)")


def _looks_like_address(text: str) -> bool:
    return 5 <= len(text) <= 80 and len(_ADDRESS.findall(text)) >= 2 and not text.isascii()


def _looks_like_person_name(text: str) -> bool:
    if not _HAN_NAME.match(text):
        return False
    from yinsi.scan.ner.model import load_default_model

    model = load_default_model()
    surnames = model.lexicon.get("sur", frozenset()) if model else frozenset()
    from yinsi.protect.masking import COMPOUND_SURNAMES

    return text[0] in surnames or text[:2] in COMPOUND_SURNAMES


def propose(table: str, column: str, sql_type: TypeEngine[Any] | str, values: list[str]) -> ColumnProposal:
    """Combine name, type and value evidence into one proposal (pure: no database access)."""
    from yinsi.protect.masking import mask_generic, mask_value

    type_name = str(sql_type)
    rule = rule_for_name(column)
    kinds = Counter(t for t in map(value_type, values) if t is not None)
    top_type, top_count = kinds.most_common(1)[0] if kinds else (None, 0)
    share = top_count / len(values) if values else 0.0
    reasons: list[str] = []
    if rule:
        reasons.append(f"列名“{column}”符合{_item_name(rule[0])}的命名")
    if values:
        if top_type:
            reasons.append(f"抽样 {len(values)} 个值中 {top_count} 个识别为 {top_type}")
        else:
            reasons.append(f"抽样 {len(values)} 个值均未识别出个人信息")

    pi_item: str | None
    pi_type: str | None
    if rule and top_type and rule[1] in (top_type, None) and share >= 0.3:
        pi_item, pi_type, confidence = rule[0], top_type, min(0.99, 0.8 + 0.2 * share)
    elif rule and top_type == "landline_phone" and rule[1] == "mobile_phone" and share >= 0.3:
        pi_item, pi_type, confidence = "contact.landline", top_type, min(0.99, 0.8 + 0.2 * share)
    elif top_type in _NUMBER_TYPES and lookalike_column(column):
        pi_item, pi_type, confidence = NOT_PI, None, 0.6
        reasons.append(f"列名“{column}”表明值是订单号、发票号码等编号，形似{top_type}的值不视为个人信息，请人工确认")
    elif top_type and share >= _VALUE_SHARE:
        pi_item, pi_type = ITEM_OF_TYPE[top_type], top_type
        confidence = 0.5 + 0.45 * share
        if pi_item is None:
            reasons.append(f"个人信息项目录中没有 {top_type} 对应的项，请在 pi_items.yaml 中补充")
    elif rule:
        pi_item, pi_type = rule[0], rule[1]
        confidence = rule[2]
        if values and rule[1] is not None:
            confidence = min(confidence, 0.4)  # the name promises a type the values do not show
            reasons.append("列名与抽样值不一致，请人工确认")
    else:
        pi_item, pi_type = NOT_PI, None
        confidence = 0.9 if values and not top_type else 0.6
        if not values:
            reasons.append("列名不像个人信息，且没有可抽样的值")
    if _is_binary(sql_type) and pi_item == NOT_PI:
        reasons.append("二进制列，未抽样")
    samples = tuple(
        mask_value(pi_type, v) if pi_type in ITEM_OF_TYPE else mask_generic(v) for v in values[:3] if v.strip()
    )
    return ColumnProposal(table, column, type_name, pi_item, pi_type, confidence, tuple(reasons),
                          sampled=len(values), matched=top_count, masked_samples=samples)


def _item_name(item_id: str) -> str:
    try:
        from yinsi.domain.taxonomy import taxonomy

        return f"“{taxonomy().item(item_id).name}”"
    except (KeyError, ImportError):
        return item_id


def _is_binary(sql_type: TypeEngine[Any] | str) -> bool:
    return isinstance(sql_type, LargeBinary)


def open_engine(url: str) -> Engine:
    """An engine for the app's database; a missing SQLite file is an error (scanning never creates one)."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:") and not Path(db).expanduser().is_file():
            raise InvalidDatabaseUrl(f"SQLite 数据库文件不存在：{db}")
    elif "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    try:
        return create_engine(parsed, connect_args=connect_args)
    except NoSuchModuleError:
        raise InvalidDatabaseUrl(f"不支持的数据库类型：{parsed.drivername}") from None
    except ModuleNotFoundError as exc:
        raise InvalidDatabaseUrl(f"缺少数据库驱动 {exc.name}（{parsed.drivername}）") from None


def classify_columns(
    url: str,
    *,
    sample_size: int = 100,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[ColumnProposal]:
    """A proposal for every column of every table reachable at ``url`` (the default schema).

    ``progress(table, done, total)`` is called after each table. Raises ``InvalidDatabaseUrl`` or
    ``DatabaseUnavailable`` (Chinese messages) when the database cannot be opened.
    """
    engine = open_engine(url)
    proposals: list[ColumnProposal] = []
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            for done, name in enumerate(tables, 1):
                table = Table(name, MetaData(), autoload_with=conn)
                for col in table.columns:
                    values: list[str] = []
                    if sample_size > 0 and not _is_binary(col.type):
                        rows = conn.execute(select(col).where(col.isnot(None)).limit(sample_size))
                        values = [_as_text(v) for (v,) in rows]
                    proposals.append(propose(name, col.name, col.type, values))
                if progress is not None:
                    progress(name, done, len(tables))
    except DBAPIError as exc:
        cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise DatabaseUnavailable(display_url(url), cause) from None
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(display_url(url), str(exc).strip().splitlines()[0]) from None
    finally:
        engine.dispose()
    return proposals


def _as_text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return ""
    return str(value)
