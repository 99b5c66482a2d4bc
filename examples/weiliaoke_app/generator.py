"""Generate and bulk-load realistic 微聊客 data: N agents with their bindings, posts, chats, orders, devices
and logs, plus browse-only visits and Redis sessions.

Determinism: every agent's data comes from a random generator seeded with (seed, agent id), and ids are
assigned sequentially, so the same seed on the same starting database gives the same rows whatever the
chunk size. Seeding a database that already holds data appends: new ids start after the largest existing
id of each table, and the agents' data differ because their ids do.

Speed: rows are built as tuples in chunks (memory stays bounded by the chunk) and loaded with COPY on
PostgreSQL (psycopg ``cursor.copy``) and multi-row INSERT (DB-API ``executemany``) on MariaDB and SQLite,
one transaction per chunk.
"""

from __future__ import annotations

import calendar
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from . import zh_data as zh
from .schema import TABLES

#: The dataset's "now" (Beijing time): fixed so that a seed always gives the same rows.
DEFAULT_NOW = datetime(2025, 6, 30, 12, 0, 0)
_EPOCH = datetime(1970, 1, 1)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PHONE_MULT = 7_919_113  # coprime with 10**8: agent id → unique 8-digit phone suffix
_SURNAME_CUM: list[tuple[int, str]] = []
_acc = 0
for _name, _w in zh.SURNAMES:
    _acc += _w
    _SURNAME_CUM.append((_acc, _name))
_SURNAME_TOTAL = _acc

Row = tuple[Any, ...]
_ESTATES = tuple(h + b for h in zh.ESTATE_HEAD for b in zh.ESTATE_BODY)
_N_ESTATES = len(_ESTATES)


class DemoAppError(RuntimeError):
    """A problem a person can fix (message in Chinese)."""


# ------------------------------------------------------------------------------------ value helpers
def id_check_char(first17: str) -> str:
    """The check character of an 18-digit resident ID number (GB 11643-1999)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def luhn_check_digit(body: str) -> str:
    """The Luhn check digit to append to ``body`` (bank cards, IMEI)."""
    total = 0
    for k, ch in enumerate(reversed(body)):
        d = int(ch)
        if k % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def uscc_check_char(first17: str) -> str:
    """The check character of a unified social credit code (统一社会信用代码, GB 32100-2015)."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


class _Clock:
    """Formats epoch seconds as 'YYYY-MM-DD HH:MM:SS' quickly (hour prefixes cached, MM:SS tabled)."""

    _MMSS = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))

    def __init__(self, now: datetime) -> None:
        self.now = calendar.timegm(now.timetuple())  # naive Beijing time, counted as if UTC: no machine TZ
        self._hours: dict[int, str] = {}

    def ts(self, epoch: int) -> str:
        hour, rem = divmod(epoch, 3600)
        prefix = self._hours.get(hour)
        if prefix is None:
            prefix = (_EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%d %H:")
            self._hours[hour] = prefix
        return prefix + self._MMSS[rem]


# -------------------------------------------------------------------------------------- the chunks
@dataclass
class Chunk:
    """Rows of every table for a run of agents, plus Redis commands."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: {t.name: [] for t in TABLES})
    redis: list[tuple[Any, ...]] = field(default_factory=list)  # (command, *args)

    def count(self) -> int:
        return sum(len(r) for r in self.rows.values())


#: The most rows one agent can have in each table. A child row's id is ``base + slot * cap + k`` (``slot``:
#: the agent's position in this run), so any agent's rows can be generated on their own, in any chunking
#: and in parallel processes, and still get the same ids. Ids therefore have gaps.
CAPS: dict[str, int] = {
    "property_bindings": 3, "posts": 9, "reviews": 2, "customers": 6, "chat_messages": 30, "orders": 2,
    "invoices": 2, "devices": 5, "login_logs": 15, "ip_logs": 3, "prize_records": 1,
}


@dataclass(frozen=True)
class Ids:
    """Where this run's ids start: ``base`` per table (after existing rows) and the first agent id."""

    base: dict[str, int]
    first_agent: int

    def for_agent(self, aid: int) -> _AgentIds:
        return _AgentIds(self, aid)


class _AgentIds:
    __slots__ = ("_limit", "_next")

    def __init__(self, ids: Ids, aid: int) -> None:
        slot = aid - ids.first_agent
        self._next = {t: ids.base[t] + slot * cap for t, cap in CAPS.items()}
        self._limit = {t: ids.base[t] + (slot + 1) * cap for t, cap in CAPS.items()}

    def take(self, table: str) -> int:
        value = self._next[table]
        if value >= self._limit[table]:
            raise AssertionError(f"more than {CAPS[table]} {table} rows for one agent")
        self._next[table] = value + 1
        return value


class Generator:
    """Builds the rows of agents ``first .. first+n-1`` deterministically from ``seed``."""

    def __init__(self, seed: int, now: datetime = DEFAULT_NOW, with_undeclared: bool = False) -> None:
        self.seed = seed
        self.clock = _Clock(now)
        self.with_undeclared = with_undeclared
        self.rng = random.Random()
        self.phone_offset = (seed * 2_654_435_761) % 10**8

    # --- primitives (all draw from self.rng) ----------------------------------------------------
    def _reseed(self, stream: int, n: int) -> None:
        self.rng.seed((self.seed << 36) | (stream << 32) | n)

    def _pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def _int(self, lo: int, hi: int) -> int:
        """Uniform in [lo, hi]."""
        return lo + int(self.rng.random() * (hi - lo + 1))

    def _digits(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n + 8) % 10**n:0{n}d}"

    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def surname(self) -> str:
        x = int(self.rng.random() * _SURNAME_TOTAL)
        for cum, name in _SURNAME_CUM:
            if x < cum:
                return name
        return _SURNAME_CUM[-1][1]

    def person_name(self, male: bool) -> str:
        pool = zh.GIVEN_MALE if male else zh.GIVEN_FEMALE
        given = self._pick(pool) + (self._pick(pool) if self.rng.random() < 0.7 else "")
        return self.surname() + given

    def mobile(self) -> str:
        return self._pick(zh.MOBILE_PREFIXES) + self._digits(8)

    def agent_mobile(self, agent_id: int) -> str:
        """A unique mobile number per agent id (the suffix is a bijection of the id)."""
        suffix = (agent_id * _PHONE_MULT + self.phone_offset) % 10**8
        return self._pick(zh.MOBILE_PREFIXES) + f"{suffix:08d}"

    def id_number(self, region: str, birth: datetime, male: bool) -> str:
        seq = self._int(0, 499) * 2 + (1 if male else 0)
        first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
        return first17 + id_check_char(first17)

    def bank_card(self) -> str:
        bin_, _bank, length = self._pick(zh.BANK_BINS)
        body = bin_ + self._digits(length - len(bin_) - 1)
        return body + luhn_check_digit(body)

    def imei(self) -> str:
        body = "86" + self._digits(12)
        return body + luhn_check_digit(body)

    def ip(self) -> str:
        r = self.rng.getrandbits(24)
        return f"{self._pick(zh.IP_FIRST_OCTETS)}.{r >> 16}.{(r >> 8) & 255}.{max(1, r & 255)}"

    def address(self, region: tuple[str, str, str, str, float, float]) -> str:
        _code, prov, city, district, _lat, _lng = region
        head = prov if prov == city else prov + city
        road = self._pick(zh.ROADS) + self._pick(zh.ROAD_SUFFIX)
        estate = self._pick(zh.ESTATE_HEAD) + self._pick(zh.ESTATE_BODY)
        return (f"{head}{district}{road}{self._int(1, 999)}号{estate}{self._int(1, 30)}栋"
                f"{self._int(1, 4)}单元{self._int(1, 33)}{self._int(1, 4):02d}室")

    def uscc(self, region: str) -> str:
        body = "91" + region + "".join(self._pick(_USCC_CHARS) for _ in range(9))
        return body + uscc_check_char(body)

    def photo_urls(self, kind: str, n: int) -> str:
        """A JSON list of image URLs."""
        return "[" + ", ".join(f'"https://img.weiliaoke.example/{kind}/{self._hex(16)}.jpg"' for _ in range(n)) + "]"

    # --- properties -----------------------------------------------------------------------------
    def property_row(self, pid: int) -> Row:
        self._reseed(1, pid)
        region = self._pick(zh.REGIONS)
        _code, prov, city, district, _lat, _lng = region
        name = self._pick(zh.ESTATE_HEAD) + self._pick(zh.ESTATE_BODY)
        developer = self._pick(zh.ESTATE_HEAD) + self._pick(zh.DEVELOPER_SUFFIX)
        road = self._pick(zh.ROADS) + self._pick(zh.ROAD_SUFFIX)
        created = self.clock.now - self._int(90, 3650) * 86400
        return (pid, name, prov, city, district, f"{district}{road}{self._int(1, 999)}号", developer,
                self._int(80, 1200) * 100, self.clock.ts(created))

    # --- one agent and everything hanging off them ----------------------------------------------
    def agent(self, aid: int, id_plan: Ids, n_properties: int, chunk: Chunk) -> None:
        self._reseed(0, aid)
        ids = id_plan.for_agent(aid)
        rnd = self.rng.random
        ts = self.clock.ts
        now = self.clock.now
        rows = chunk.rows
        region = self._pick(zh.REGIONS)
        code, _prov, _city, district, lat0, lng0 = region
        male = rnd() < 0.55
        birth = datetime(self._int(1970, 2002), self._int(1, 12), self._int(1, 28))
        created = now - int(rnd() * 3 * 365 * 86400) - 86400
        phone = self.agent_mobile(aid)
        id_number = self.id_number(code, birth, male)
        n_bindings = (0, 1, 2, 2, 2, 2, 3, 3, 3, 1)[int(rnd() * 10)]
        verified = rnd() < 0.6
        name = self.person_name(male) if (n_bindings or verified or rnd() < 0.5) else None
        face_result = face_ref = None
        if verified:
            face_result, face_ref = ("passed" if rnd() < 0.95 else "failed"), self._hex(64)
        bank_card = reserved = None
        if rnd() < 0.5:
            bank_card = self.bank_card()
            reserved = phone if rnd() < 0.8 else self.mobile()
        avatar = f"https://img.weiliaoke.example/avatar/{self._hex(20)}.jpg" if rnd() < 0.7 else None
        rows["agents"].append((aid, phone, name, id_number if name else None, face_result, face_ref, bank_card,
                               reserved, avatar, "active", ts(created)))
        real_name = name or self.person_name(male)

        def after(start: int) -> int:
            return start + int(rnd() * max(60, now - start))

        # 绑定楼盘
        bound: list[int] = []
        for _ in range(n_bindings):
            pid = 1 + int(rnd() * n_properties)
            bound.append(pid)
            status = "verified" if rnd() < 0.8 else ("pending" if rnd() < 0.75 else "rejected")
            rows["property_bindings"].append((
                ids.take("property_bindings"), aid, pid, real_name, id_number,
                phone if rnd() < 0.9 else self.mobile(),
                f"https://img.weiliaoke.example/card/{self._hex(20)}.jpg" if rnd() < 0.6 else None,
                f"https://img.weiliaoke.example/badge/{self._hex(20)}.jpg",
                f"https://img.weiliaoke.example/idcard/{self._hex(20)}.jpg" if rnd() < 0.7 else None,
                status, ts(after(created)),
            ))

        def prop_name() -> str:
            return _ESTATES[int(rnd() * _N_ESTATES)]

        # 发布信息、楼盘点评
        for _ in range(self._int(1, 9)):
            pid = self._pick(bound) if bound and rnd() < 0.8 else None
            body = self._pick(zh.POST_TEMPLATES).format(p=prop_name(), n=self._int(2, 140), d=district)
            rows["posts"].append((ids.take("posts"), aid, pid, self._pick(zh.POST_CHANNELS), body,
                                  self.photo_urls("post", self._int(1, 3)) if rnd() < 0.6 else None,
                                  ts(after(created))))
        for _ in range((0, 1, 1, 2)[int(rnd() * 4)]):
            pid = self._pick(bound) if bound else 1 + int(rnd() * n_properties)
            rows["reviews"].append((ids.take("reviews"), aid, pid, self._int(2, 5),
                                    self._pick(zh.REVIEW_TEMPLATES).format(p=prop_name()),
                                    self.photo_urls("review", self._int(1, 2)) if rnd() < 0.3 else None,
                                    ts(after(created))))

        # 客户与微聊
        customers: list[tuple[int, str, int]] = []
        for _ in range(self._int(2, 6)):
            cid = ids.take("customers")
            cname = self.person_name(rnd() < 0.5)
            ccreated = after(created)
            customers.append((cid, cname, ccreated))
            rows["customers"].append((cid, aid, cname, self.mobile() if rnd() < 0.9 else None, ts(ccreated)))
        agent_label = (real_name[0] + ("先生" if male else "女士"))
        for _ in range(self._int(10, 30)):
            cid, cname, ccreated = self._pick(customers)
            out = rnd() < 0.55
            kind = rnd()
            lat = lng = None
            if kind < 0.08:
                msg_type, body = "location", f"[位置] {prop_name()}售楼处"
                lat = round(lat0 + (rnd() - 0.5) * 0.1, 6)
                lng = round(lng0 + (rnd() - 0.5) * 0.1, 6)
            elif kind < 0.18:
                msg_type, body = "image", f"https://img.weiliaoke.example/chat/{self._hex(16)}.jpg"
            else:
                msg_type = "text"
                tpl = self._pick(zh.CHAT_OUT if out else zh.CHAT_IN)
                body = tpl.format(p=prop_name(), a=agent_label, c=cname[0] + "先生/女士", n=self._int(60, 180),
                                  m=self._int(80, 900))
            rows["chat_messages"].append((ids.take("chat_messages"), aid, cid, "out" if out else "in", msg_type,
                                          body, lat, lng, ts(after(ccreated))))

        # 订单与发票
        for _ in range((0, 0, 0, 1, 1, 1, 1, 2, 2, 1)[int(rnd() * 10)]):
            oid = ids.take("orders")
            product, price, physical = self._pick(zh.PRODUCTS)
            qty = self._int(1, 2) if physical else 1
            amount = f"{float(price) * qty:.2f}"
            ocreated = after(created)
            status = "paid" if rnd() < 0.9 else ("refunded" if rnd() < 0.5 else "closed")
            card = bank_card or (self.bank_card() if rnd() < 0.3 else None)
            masked = card[:6] + "*" * (len(card) - 10) + card[-4:] if card and rnd() < 0.6 else None
            consignee = (real_name if rnd() < 0.8 else self.person_name(rnd() < 0.5)) if physical else None
            rows["orders"].append((
                oid, f"WLK{ts(ocreated)[:10].replace('-', '')}{oid:010d}", aid, product, qty, amount,
                self._pick(("wechat", "wechat", "alipay", "iap")), masked, consignee,
                (phone if rnd() < 0.8 else self.mobile()) if physical else None,
                self.address(region) if physical else None, status, ts(ocreated),
                ts(ocreated + self._int(5, 600)) if status != "closed" else None,
            ))
            if status == "paid" and rnd() < 0.6:
                if rnd() < 0.5:
                    title_type, title, tax_no = "personal", real_name, None
                else:
                    title_type = "company"
                    title = f"{self._pick(zh.COMPANY_HEAD)}{self._pick(zh.COMPANY_TAIL)}"
                    tax_no = self.uscc(code)
                rows["invoices"].append((ids.take("invoices"), oid, title_type, title, tax_no, amount,
                                         ts(ocreated + self._int(3600, 30 * 86400))))

        # 设备与登录日志
        device_ids: list[str] = []
        for _ in range(self._int(1, 5)):
            did = self._hex(32)
            device_ids.append(did)
            android = rnd() < 0.75
            imei = self.imei() if android and rnd() < 0.5 else None
            oaid = (f"{self._hex(8)}-{self._hex(4)}-{self._hex(4)}-{self._hex(4)}-{self._hex(12)}"
                    if android and rnd() < 0.8 else None)
            rows["devices"].append((ids.take("devices"), aid, did, imei, oaid, ts(after(created))))
        home_ip = self.ip()
        for _ in range(self._int(5, 15)):
            when = now - int(rnd() * 365 * 86400)
            rows["login_logs"].append((ids.take("login_logs"), aid, home_ip if rnd() < 0.6 else self.ip(),
                                       self._pick(device_ids), self._pick(zh.LOGIN_RESULTS),
                                       ts(max(when, created))))

        # 仅浏览：与本账号无关的访客（约每个账号两条）
        for _ in range(self._int(1, 3)):
            rows["ip_logs"].append((ids.take("ip_logs"), self.ip(), self._pick(zh.BROWSE_PATHS),
                                    ts(now - int(rnd() * 3 * 86400))))

        # 营销活动奖品
        if rnd() < 0.1:
            prize, physical = self._pick(zh.PRIZES)
            rows["prize_records"].append((
                ids.take("prize_records"), aid, self._pick(zh.CAMPAIGNS), prize, real_name, phone,
                self.address(region) if physical else None, id_number if "现金" in prize else None,
                ts(after(created)),
            ))

        # Redis：会话、短信验证码
        if rnd() < 0.4:
            token = self._hex(32)
            ttl = self._int(3600, 7 * 86400)
            chunk.redis.append(("set", f"session:{token}", str(aid), ttl))
            chunk.redis.append(("sadd", f"user:{aid}:sessions", token, ttl))
        if rnd() < 0.03:
            chunk.redis.append(("set", f"sms:code:{phone}", self._digits(6), 300))
        if self.with_undeclared and rnd() < 0.3:
            terms = [f"{district}{self._pick(('两居', '三居', '学区房', '地铁房'))}" for _ in range(self._int(1, 5))]
            chunk.redis.append(("rpush", f"user:{aid}:recent_search", *terms))

    def chunk(self, first_agent: int, n: int, ids: Ids, n_properties: int) -> Chunk:
        chunk = Chunk()
        for aid in range(first_agent, first_agent + n):
            self.agent(aid, ids, n_properties, chunk)
        return chunk


# ------------------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class SeedResult:
    """What one seeding run did."""

    users: int
    rows: int
    redis_commands: int
    seconds: float
    first_agent_id: int
    rows_by_table: dict[str, int]

    @property
    def users_per_second(self) -> float:
        return self.users / self.seconds if self.seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _id_plan(engine: Engine) -> tuple[Ids, int]:
    """Where this run's ids start (after existing rows), and how many properties exist."""
    missing = [t.name for t in TABLES if not inspect(engine).has_table(t.name)]
    if missing:
        raise DemoAppError(f"数据库中缺少演示应用的表（{'、'.join(missing)}）：请先运行 yinsi demo-app create --url …")
    with engine.connect() as conn:
        top = {t.name: int(conn.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one()) for t in TABLES}
    return Ids({t: top[t] + 1 for t in CAPS}, top["agents"] + 1), top["properties"]


class _Loader:
    """Writes a chunk in one transaction: COPY on PostgreSQL, executemany elsewhere.

    Foreign-key checks are switched off for the bulk load where the database allows it (the generated rows
    are consistent by construction): ``session_replication_role = replica`` on PostgreSQL (needs a
    superuser; otherwise the triggers run and loading is about three times slower) and
    ``FOREIGN_KEY_CHECKS = 0`` on MariaDB.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.dialect.name
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.insert_sql = {
            t.name: f"INSERT INTO {t.name} ({', '.join(c.name for c in t.columns)}) "
                    f"VALUES ({', '.join(marker for _ in t.columns)})"
            for t in TABLES
        }
        self.copy_sql = {t.name: f"COPY {t.name} ({', '.join(c.name for c in t.columns)}) FROM STDIN" for t in TABLES}
        self.skip_fk_triggers = self.backend == "postgresql" and self._may_skip_triggers()

    def _may_skip_triggers(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SET session_replication_role = replica")
                conn.rollback()
            return True
        except DBAPIError:
            return False

    def write(self, rows: dict[str, list[Row]]) -> None:
        with self.engine.begin() as conn:
            if self.backend == "postgresql":
                if self.skip_fk_triggers:
                    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                raw = conn.connection.driver_connection
                assert raw is not None
                with raw.cursor() as cur:
                    for t in TABLES:
                        batch = rows.get(t.name)
                        if batch:
                            with cur.copy(self.copy_sql[t.name]) as copy:
                                for row in batch:
                                    copy.write_row(row)
            else:
                if self.backend in ("mysql", "mariadb"):
                    conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
                for t in TABLES:
                    batch = rows.get(t.name)
                    if batch:
                        conn.exec_driver_sql(self.insert_sql[t.name], batch)  # type: ignore[arg-type]
                if self.backend in ("mysql", "mariadb"):
                    conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


def _redis_apply(client: Any, commands: list[tuple[Any, ...]], prefix: str) -> None:
    pipe = client.pipeline(transaction=False)
    for cmd in commands:
        name, key = cmd[0], prefix + cmd[1]
        if name == "set":
            pipe.set(key, cmd[2], ex=cmd[3])
        elif name == "sadd":
            pipe.sadd(key, cmd[2])
            pipe.expire(key, cmd[3])
        else:
            pipe.rpush(key, *cmd[2:])
    pipe.execute()


class _Job:
    """Generates and loads runs of agents; one per process (its connections are opened in that process)."""

    def __init__(self, url: str, redis_url: str | None, redis_prefix: str, gen: Generator, ids: Ids,
                 n_properties: int) -> None:
        self.url, self.redis_url, self.redis_prefix = url, redis_url, redis_prefix
        self.gen, self.ids, self.n_properties = gen, ids, n_properties
        self.loader: _Loader | None = None
        self.redis: Any = None

    def open(self) -> None:
        from yinsi.storage.engine import make_engine

        self.loader = _Loader(make_engine(self.url))
        if self.redis_url is not None:
            import redis

            self.redis = redis.Redis.from_url(self.redis_url)

    def close(self) -> None:
        if self.loader is not None:
            self.loader.engine.dispose()
        if self.redis is not None:
            self.redis.close()

    def run(self, span: tuple[int, int]) -> tuple[int, dict[str, int], int]:
        """Agents ``span[0] .. span[0]+span[1]-1``: (users, rows per table, Redis commands)."""
        assert self.loader is not None
        chunk = self.gen.chunk(span[0], span[1], self.ids, self.n_properties)
        self.loader.write(chunk.rows)
        if self.redis is not None and chunk.redis:
            _redis_apply(self.redis, chunk.redis, self.redis_prefix)
        return span[1], {k: len(v) for k, v in chunk.rows.items()}, len(chunk.redis) if self.redis is not None else 0


_JOB: _Job | None = None


def _worker_init(job: _Job) -> None:
    global _JOB
    _JOB = job
    job.open()


def _worker_run(span: tuple[int, int]) -> tuple[int, dict[str, int], int]:
    assert _JOB is not None
    return _JOB.run(span)


def default_workers(url: str) -> int:
    """Processes to use: one on SQLite (a single writer), else one per core, at most four."""
    if make_url(url).get_backend_name() == "sqlite":
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def seed(
    url: str,
    users: int,
    seed_value: int = 2022,
    *,
    redis_url: str | None = None,
    redis_prefix: str = "",
    chunk_size: int = 2000,
    workers: int | None = None,
    now: datetime = DEFAULT_NOW,
    with_undeclared: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Generate ``users`` agents (and their related rows) into the demo schema at ``url``.

    Appends after existing data (new ids). With ``workers`` > 1, runs of ``chunk_size`` agents are
    generated and loaded by parallel processes (each its own transaction); the rows do not depend on the
    number of workers or the chunk size. ``progress(users_done, rows_done)`` is called after each chunk.
    """
    from yinsi.storage.engine import make_engine

    if users < 1:
        raise DemoAppError("用户数必须至少为 1")
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        ids, existing_props = _id_plan(engine)
        gen = Generator(seed_value, now, with_undeclared)
        new_props = max(50, users // 20) if existing_props == 0 else users // 20
        props = [gen.property_row(pid) for pid in range(existing_props + 1, existing_props + new_props + 1)]
        if props:
            _Loader(engine).write({"properties": props})
    finally:
        engine.dispose()
    total: dict[str, int] = {t.name: 0 for t in TABLES}
    total["properties"] = len(props)
    rows_done, done, redis_commands = len(props), 0, 0
    job = _Job(url, redis_url, redis_prefix, gen, ids, existing_props + new_props)
    size = max(1, chunk_size)
    spans = [(start, min(size, ids.first_agent + users - start))
             for start in range(ids.first_agent, ids.first_agent + users, size)]
    n_workers = min(workers or default_workers(url), len(spans))

    def account(result: tuple[int, dict[str, int], int]) -> None:
        nonlocal rows_done, done, redis_commands
        n, counts, n_redis = result
        for name, count in counts.items():
            total[name] += count
        done += n
        rows_done += sum(counts.values())
        redis_commands += n_redis
        if progress is not None:
            progress(done, rows_done)

    if n_workers <= 1:
        job.open()
        try:
            for span in spans:
                account(job.run(span))
        finally:
            job.close()
    else:
        ctx = multiprocessing.get_context("fork")  # children inherit this dynamically loaded package
        with ctx.Pool(n_workers, initializer=_worker_init, initargs=(job,)) as pool:
            for result in pool.imap_unordered(_worker_run, spans):
                account(result)
    _analyze(url)
    return SeedResult(done, rows_done, redis_commands, time.perf_counter() - started, ids.first_agent, total)


def _analyze(url: str) -> None:
    """Refresh the planner's statistics after a bulk load. Without it PostgreSQL plans the freshly loaded
    tables from empty-table estimates (a join to ``invoices`` becomes a sequential scan of every invoice)
    until autovacuum catches up."""
    from sqlalchemy import text

    from yinsi.storage.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            name = conn.dialect.name
            if name == "postgresql":
                conn.execute(text("ANALYZE " + ", ".join(t.name for t in TABLES)))
            elif name in ("mysql", "mariadb"):
                conn.execute(text("ANALYZE TABLE " + ", ".join(t.name for t in TABLES)))
            else:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def create_schema(engine: Engine) -> list[str]:
    """Create the demo app's tables that do not exist yet; return the names created."""
    from .schema import metadata

    existing = set(inspect(engine).get_table_names())
    metadata.create_all(engine, checkfirst=True)
    return [t.name for t in TABLES if t.name not in existing]


def stats(engine: Engine) -> dict[str, int]:
    """Row count of each demo table."""
    with engine.connect() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in TABLES}


def redis_stats(client: Any, prefix: str = "", limit: int = 1_000_000) -> dict[str, int]:
    """Key counts by pattern shape under ``prefix`` (scans at most ``limit`` keys)."""
    import re

    shape = re.compile(r"[0-9a-f]{16,}|\d+")
    counts: dict[str, int] = {}
    for k, key in enumerate(client.scan_iter(match=f"{prefix}*", count=1000)):
        if k >= limit:
            break
        text = key.decode() if isinstance(key, bytes) else str(key)
        label = shape.sub("*", text[len(prefix):])
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))
