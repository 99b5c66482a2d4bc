"""Generate and bulk-load realistic 客户通 (物业通) data: N houses with their residents, repair tickets,
visitor passes, payments, hotline calls, WeCom contacts and network logs.

Determinism: everything about house ``h`` and its residents comes from random generators seeded with
(seed, stream, h), and ids are ``base + slot × cap + k`` (``slot``: the house's position in the run), so
the same seed on the same starting database gives the same rows whatever the chunk size or worker count,
and a house can compute its neighbours' residents without generating the neighbours. Seeding a database
that already holds data appends (new ids after the largest existing ones).

Hard cases, on purpose (every house whose id ends in 3, "a marked household", and at random elsewhere):

- a relative's row points at the owner (``residents.family_of_id``) and the relative's tickets mention the
  owner by name and phone (once with the owner's ID number);
- the next house's tickets mention the owner as a neighbour, and one of them names the owner as the
  contact who reported it (``contact_name``/``contact_phone``);
- the house after that registers a visitor pass for the owner (the owner's phone as ``visitor_phone``);
- the owner calls the hotline (calls are matched by phone only) and a WeCom contact with the owner's
  mobile exists without a resident link;
- payments both older and younger than the 3-year hold, and network logs both older and younger than
  6 months (counted from the generator's ``now``).

Speed: rows are built as tuples per chunk and loaded in one transaction per chunk, with COPY on
PostgreSQL and multi-row INSERT (DB-API ``executemany``; PyMySQL rewrites it into multi-row statements)
on MariaDB and SQLite.
"""

from __future__ import annotations

import calendar
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from . import zh_data as zh
from .schema import TABLES

#: The dataset's default "now" (Beijing time); ``seed(now=…)`` moves it (holds count from row dates).
DEFAULT_NOW = datetime(2025, 6, 30, 12, 0, 0)
_EPOCH = datetime(1970, 1, 1)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PHONE_MULT = 7_919_113  # coprime with 10**8: resident id → unique 8-digit phone suffix
_DAY = 86400
_YEAR = 365 * _DAY

Row = tuple[Any, ...]

_SURNAME_CUM: list[tuple[int, str]] = []
_acc = 0
for _name, _w in zh.SURNAMES:
    _acc += _w
    _SURNAME_CUM.append((_acc, _name))
_SURNAME_TOTAL = _acc


class DemoAppError(RuntimeError):
    """A problem a person can fix (message in Chinese)."""


def id_check_char(first17: str) -> str:
    """The check character of an 18-digit resident ID number (GB 11643-1999)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def marked(house_id: int) -> bool:
    """Whether ``house_id`` is a marked household (every hard case is made around its owner)."""
    return house_id % 10 == 3


class _Clock:
    _MMSS = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))

    def __init__(self, now: datetime) -> None:
        self.now = calendar.timegm(now.timetuple())  # naive Beijing time counted as if UTC
        self._hours: dict[int, str] = {}

    def ts(self, epoch: int) -> str:
        hour, rem = divmod(epoch, 3600)
        prefix = self._hours.get(hour)
        if prefix is None:
            prefix = (_EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%d %H:")
            self._hours[hour] = prefix
        return prefix + self._MMSS[rem]

    def day(self, epoch: int) -> str:
        return self.ts(epoch)[:10]


#: The most rows one house can have in each table (ids are ``base + slot × cap + k``; ids have gaps).
CAPS: dict[str, int] = {
    "residents": 4, "house_residents": 4, "visitor_passes": 4, "payments": 8, "calls": 5,
    "wecom_contacts": 6, "network_logs": 40,
}
#: Tickets per house have no fixed cap: the cap follows ``tickets_per_house`` (see ``Ids.caps``).


@dataclass(frozen=True)
class Person:
    rid: int
    name: str
    phone: str
    id_number: str
    male: bool
    relation: str  # 本人 for the owner


@dataclass(frozen=True)
class Ids:
    """Where this run's ids start (after existing rows) and each table's per-house cap."""

    base: dict[str, int]
    first_house: int
    last_house: int  # inclusive: houses first..last are in this run
    caps: dict[str, int]

    def resident_id(self, house: int, k: int) -> int:
        return self.base["residents"] + (house - self.first_house) * self.caps["residents"] + k

    def in_run(self, house: int) -> bool:
        return self.first_house <= house <= self.last_house


class _HouseIds:
    __slots__ = ("_limit", "_next")

    def __init__(self, ids: Ids, house: int) -> None:
        slot = house - ids.first_house
        self._next = {t: ids.base[t] + slot * cap for t, cap in ids.caps.items()}
        self._limit = {t: ids.base[t] + (slot + 1) * cap for t, cap in ids.caps.items()}

    def take(self, table: str) -> int:
        value = self._next[table]
        if value >= self._limit[table]:
            raise AssertionError(f"too many {table} rows for one house")
        self._next[table] = value + 1
        return value


@dataclass
class Chunk:
    rows: dict[str, list[Row]] = field(default_factory=lambda: {t.name: [] for t in TABLES})

    def count(self) -> int:
        return sum(len(r) for r in self.rows.values())


class Generator:
    """Builds the rows of houses ``first .. last`` deterministically from ``seed``."""

    def __init__(self, seed: int, now: datetime = DEFAULT_NOW, tickets_per_house: int = 3) -> None:
        self.seed = seed
        self.clock = _Clock(now)
        self.tickets_per_house = tickets_per_house
        self.rng = random.Random()
        self.phone_offset = (seed * 2_654_435_761) % 10**8
        self._people: dict[int, list[Person]] = {}

    # --- primitives -----------------------------------------------------------------------------
    def _reseed(self, stream: int, n: int) -> None:
        self.rng.seed((self.seed << 40) | (stream << 36) | n)

    def _pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def _int(self, lo: int, hi: int) -> int:
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

    def person_name(self, male: bool, two_given: bool = False) -> str:
        pool = zh.GIVEN_MALE if male else zh.GIVEN_FEMALE
        given = self._pick(pool) + (self._pick(pool) if two_given or self.rng.random() < 0.7 else "")
        return self.surname() + given

    def mobile(self) -> str:
        """A random mobile number for someone who is not a resident (a visitor, an unknown caller)."""
        return self._pick(zh.MOBILE_PREFIXES) + self._digits(8)

    def ip(self) -> str:
        r = self.rng.getrandbits(24)
        return f"{self._pick(zh.IP_FIRST_OCTETS)}.{r >> 16}.{(r >> 8) & 255}.{max(1, r & 255)}"

    def plate(self) -> str:
        return self._pick(zh.PLATE_HEADS) + "".join(self._pick(zh.PLATE_CHARS) for _ in range(5))

    # --- pure per-house facts (neighbours read them without generating the neighbour) -------------
    def people(self, house: int, ids: Ids) -> list[Person]:
        """The residents of ``house`` (owner first), a pure function of (seed, house, its ids)."""
        cached = self._people.get(house)
        if cached is not None:
            return cached
        rng_state = self.rng.getstate()
        self._reseed(1, house)
        rnd = self.rng.random
        n = 3 if marked(house) else (1, 1, 2, 2, 2, 3, 3, 4)[int(rnd() * 8)]
        region = self._pick(zh.REGIONS)
        out: list[Person] = []
        owner_birth_year = self._int(1955, 1995)
        for k in range(n):
            rid = ids.resident_id(house, k)
            relation = "本人" if k == 0 else self._pick(zh.RELATIONS)
            male = rnd() < 0.5
            year = {"本人": owner_birth_year, "配偶": owner_birth_year + self._int(-3, 3),
                    "子女": owner_birth_year + self._int(22, 32), "父母": owner_birth_year - self._int(22, 32),
                    "兄弟姐妹": owner_birth_year + self._int(-6, 6)}[relation]
            year = min(year, 2007)
            birth = datetime(year, self._int(1, 12), self._int(1, 28))
            seq = self._int(0, 499) * 2 + (1 if male else 0)
            first17 = f"{region[0]}{birth:%Y%m%d}{seq:03d}"
            suffix = (rid * _PHONE_MULT + self.phone_offset) % 10**8
            phone = self._pick(zh.MOBILE_PREFIXES) + f"{suffix:08d}"
            name = self.person_name(male, two_given=marked(house) and k == 0)
            out.append(Person(rid, name, phone, first17 + id_check_char(first17), male, relation))
        self.rng.setstate(rng_state)
        if len(self._people) > 4096:
            self._people.clear()
        self._people[house] = out
        return out

    def address(self, house: int) -> str:
        rng_state = self.rng.getstate()
        self._reseed(2, house)
        _code, prov, city, district, _lat, _lng = self._pick(zh.REGIONS)
        head = prov if prov == city else prov + city
        road = self._pick(zh.ROADS) + self._pick(zh.ROAD_SUFFIX)
        estate = self._pick(zh.ESTATE_HEAD) + self._pick(zh.ESTATE_BODY)
        text_ = (f"{head}{district}{road}{self._int(1, 999)}号{estate}{self._int(1, 30)}栋"
                 f"{self._int(1, 4)}单元{self._int(1, 33)}{self._int(1, 4):02d}室")
        self.rng.setstate(rng_state)
        return text_

    # --- one house and everything hanging off it ------------------------------------------------
    def house(self, h: int, ids: Ids, chunk: Chunk) -> None:
        people = self.people(h, ids)
        self._reseed(0, h)
        take = _HouseIds(ids, h).take
        rnd = self.rng.random
        ts, day, now = self.clock.ts, self.clock.day, self.clock.now
        rows = chunk.rows
        owner = people[0]
        created = now - self._int(2 * _YEAR, 6 * _YEAR)

        def after(start: int) -> int:
            return start + int(rnd() * max(60, now - start))

        rows["houses"].append((h, self.address(h), f"{self._int(450, 1800) / 10:.2f}", ts(created)))
        for k, p in enumerate(people):
            joined = created + (0 if k == 0 else self._int(0, _YEAR))
            rows["residents"].append((p.rid, p.phone, p.name, p.id_number, owner.rid if k else None,
                                      p.relation, "active", ts(joined)))
            rows["house_residents"].append((take("house_residents"), h, p.rid, "业主" if k == 0 else "家属",
                                            day(joined)))

        prev = self.people(h - 1, ids) if ids.in_run(h - 1) else None
        prev2 = self.people(h - 2, ids) if ids.in_run(h - 2) else None
        nxt = self.people(h + 1, ids) if ids.in_run(h + 1) else None

        # 报修工单: free text mentioning relatives and neighbours; contact = whoever reported it
        n_tickets = self._int(0, 2 * self.tickets_per_house)
        forced: list[str] = []
        if marked(h) and len(people) > 1:
            forced += ["relative_mentions_owner", "relative_gives_owner_id"]
        if prev is not None and marked(h - 1):
            forced += ["neighbour_mentions_prev_owner", "prev_owner_reports"]
        n_tickets = max(n_tickets, len(forced))
        for t in range(n_tickets):
            kind = forced[t] if t < len(forced) else None
            filer = self._pick(people)
            contact = filer
            fmt: dict[str, str] = {"room": self._pick(zh.ROOMS), "thing": self._pick(zh.THINGS),
                                   "problem": self._pick(zh.PROBLEMS)}
            if kind in ("relative_mentions_owner", "relative_gives_owner_id"):
                filer = contact = people[1 + int(rnd() * (len(people) - 1))]
                fmt.update(who=owner.name, who_phone=owner.phone, word=self._pick(zh.RELATION_WORDS["本人"]),
                           owner=owner.name, owner_id=owner.id_number)
                tpl = self._pick(zh.TICKET_RELATIVE if kind == "relative_mentions_owner" else zh.TICKET_OWNER_ID)
            elif kind in ("neighbour_mentions_prev_owner", "prev_owner_reports") and prev is not None:
                nb = prev[0]
                fmt.update(nb=nb.name, nb_phone=nb.phone)
                tpl = self._pick(zh.TICKET_NEIGHBOUR) if kind == "neighbour_mentions_prev_owner" else self._pick(
                    zh.TICKET_PLAIN)
                if kind == "prev_owner_reports":
                    contact = nb  # the neighbour reported the problem for this house
            else:
                roll = rnd()
                others = [p for p in people if p is not filer]
                if roll < 0.25 and others:
                    rel = self._pick(others)
                    word = self._pick(zh.RELATION_WORDS.get(rel.relation, ("家人",)))
                    fmt.update(who=rel.name, who_phone=rel.phone, word=word)
                    tpl = self._pick(zh.TICKET_RELATIVE)
                    if rnd() < 0.5:
                        contact = rel
                elif roll < 0.35 and (prev or nxt):
                    nb = self._pick(prev or nxt or people)
                    fmt.update(nb=nb.name, nb_phone=nb.phone)
                    tpl = self._pick(zh.TICKET_NEIGHBOUR)
                else:
                    tpl = self._pick(zh.TICKET_PLAIN)
            opened = after(created)
            status = self._pick(("open", "assigned", "done", "done", "done", "closed"))
            updated = opened + (self._int(600, 7 * _DAY) if status != "open" else 0)
            rows["repair_tickets"].append((take("repair_tickets"), filer.rid, h, contact.name, contact.phone,
                                           tpl.format(**fmt), status, ts(opened), ts(min(updated, now))))

        # 访客通行证: the visitor is mostly a stranger, sometimes a resident of another house
        n_passes = self._int(0, 3)
        force_visit = prev2 is not None and marked(h - 2)
        n_passes = max(n_passes, 1 if force_visit else 0)
        for v in range(n_passes):
            host = self._pick(people)
            if v == 0 and force_visit and prev2 is not None:
                visitor_name, visitor_phone = prev2[0].name, prev2[0].phone
            elif prev is not None and rnd() < 0.1:
                visitor_name, visitor_phone = prev[0].name, prev[0].phone
            else:
                visitor_name, visitor_phone = self.person_name(rnd() < 0.5), self.mobile()
            visit = now - self._int(0, _YEAR)
            rows["visitor_passes"].append((take("visitor_passes"), host.rid, visitor_name, visitor_phone,
                                           self.plate() if rnd() < 0.3 else None, day(visit),
                                           ts(visit - self._int(600, 3 * _DAY))))

        # 缴费: by the owner, over five years (some older than the 3-year hold, some younger)
        n_pay = self._int(2, 6)
        for k in range(n_pay):
            pid = take("payments")
            fee, lo, hi = self._pick(zh.FEE_TYPES)
            if marked(h) and k < 2:
                paid = now - (self._int(4 * _YEAR, 5 * _YEAR) if k == 0 else self._int(30 * _DAY, _YEAR))
            else:
                paid = now - self._int(_DAY, 5 * _YEAR)
            rows["payments"].append((pid, f"KHT{day(paid).replace('-', '')}{pid:010d}", owner.rid, h, fee,
                                     f"{self._int(lo, hi)}.00", self._pick(zh.PAY_CHANNELS), owner.name, ts(paid)))

        # 客服热线: matched by the caller's number only
        n_calls = self._int(0, 2) + (1 if marked(h) else 0)
        for k in range(n_calls):
            cid = take("calls")
            caller = owner.phone if (k == 0 and marked(h)) else (
                self._pick(people).phone if rnd() < 0.8 else self.mobile())
            started = now - self._int(0, 2 * _YEAR)
            rows["calls"].append((cid, caller, "in" if rnd() < 0.85 else "out", self._int(20, 900),
                                  f"oss://kht-recordings/{day(started).replace('-', '/')}/{cid}-{self._hex(12)}.mp3",
                                  ts(started)))

        # 企业微信外部联系人: linked to a resident, or (not yet linked) known by mobile only
        for p in people:
            if rnd() < 0.5:
                rows["wecom_contacts"].append((take("wecom_contacts"), p.rid, f"wm{self._hex(22)}", p.name, p.phone,
                                               self._pick(zh.STAFF), ts(after(created))))
        if marked(h) or rnd() < 0.1:
            rows["wecom_contacts"].append((take("wecom_contacts"), None, f"wm{self._hex(22)}",
                                           f"{owner.name[0]}先生/女士", owner.phone, self._pick(zh.STAFF),
                                           ts(after(created))))

        # 网络日志: the 物业通 app's requests over the last year (some older than the 6-month hold)
        for k, p in enumerate(people):
            if not (rnd() < 0.7 or k == 0):
                continue
            home_ip = self.ip()
            n_logs = self._int(0, 8) + (2 if marked(h) and k == 0 else 0)
            for j in range(n_logs):
                if marked(h) and k == 0 and j < 2:
                    when = now - (self._int(200 * _DAY, _YEAR) if j == 0 else self._int(_DAY, 150 * _DAY))
                else:
                    when = now - self._int(0, _YEAR)
                rows["network_logs"].append((take("network_logs"), p.rid, home_ip if rnd() < 0.7 else self.ip(),
                                             self._pick(zh.APP_PATHS), ts(when)))

    def chunk(self, first: int, n: int, ids: Ids) -> Chunk:
        chunk = Chunk()
        for h in range(first, first + n):
            self.house(h, ids, chunk)
        return chunk


# ------------------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class SeedResult:
    """What one seeding run did."""

    houses: int
    residents: int
    tickets: int
    rows: int
    seconds: float
    first_house_id: int
    rows_by_table: dict[str, int]

    @property
    def houses_per_second(self) -> float:
        return self.houses / self.seconds if self.seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _id_plan(engine: Engine, houses: int, tickets_per_house: int) -> Ids:
    missing = [t.name for t in TABLES if not inspect(engine).has_table(t.name)]
    if missing:
        raise DemoAppError(f"数据库中缺少演示应用的表（{'、'.join(missing)}）：请先运行 "
                           "yinsi demo-app create --app kehutong --url …")
    with engine.connect() as conn:
        top = {t.name: int(conn.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one()) for t in TABLES}
    caps = dict(CAPS, repair_tickets=max(2 * tickets_per_house, 4))
    first = top["houses"] + 1
    return Ids({t: top[t] + 1 for t in caps}, first, first + houses - 1, caps)


class _Loader:
    """Writes a chunk in one transaction: COPY on PostgreSQL, executemany (multi-row INSERT) elsewhere;
    foreign-key checks off for the load where the database allows it (rows are consistent by construction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.dialect.name
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.insert_sql = {t.name: f"INSERT INTO {t.name} ({', '.join(c.name for c in t.columns)}) "
                                   f"VALUES ({', '.join(marker for _ in t.columns)})" for t in TABLES}
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
                return
            if self.backend in ("mysql", "mariadb"):
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for t in TABLES:
                batch = rows.get(t.name)
                if batch:
                    conn.exec_driver_sql(self.insert_sql[t.name], batch)  # type: ignore[arg-type]
            if self.backend in ("mysql", "mariadb"):
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


class _Job:
    def __init__(self, url: str, gen: Generator, ids: Ids) -> None:
        self.url, self.gen, self.ids = url, gen, ids
        self.loader: _Loader | None = None

    def open(self) -> None:
        from yinsi.storage.engine import make_engine

        self.loader = _Loader(make_engine(self.url))

    def close(self) -> None:
        if self.loader is not None:
            self.loader.engine.dispose()

    def run(self, span: tuple[int, int]) -> tuple[int, dict[str, int]]:
        assert self.loader is not None
        chunk = self.gen.chunk(span[0], span[1], self.ids)
        self.loader.write(chunk.rows)
        return span[1], {k: len(v) for k, v in chunk.rows.items()}


_JOB: _Job | None = None


def _worker_init(job: _Job) -> None:
    global _JOB
    _JOB = job
    job.open()


def _worker_run(span: tuple[int, int]) -> tuple[int, dict[str, int]]:
    assert _JOB is not None
    return _JOB.run(span)


def default_workers(url: str) -> int:
    if make_url(url).get_backend_name() == "sqlite":
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def seed(
    url: str,
    houses: int,
    seed_value: int = 2021,
    *,
    tickets_per_house: int = 3,
    chunk_size: int = 1000,
    workers: int | None = None,
    now: datetime = DEFAULT_NOW,
    progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Generate ``houses`` houses with their residents and records into the schema at ``url``.

    ``tickets_per_house`` is the mean number of repair tickets per house (0 … 2× the mean): 1,000,000
    tickets are e.g. ``houses=100_000, tickets_per_house=10``. ``progress(houses_done, rows_done)`` is
    called after each chunk.
    """
    from yinsi.storage.engine import make_engine

    if houses < 1:
        raise DemoAppError("房屋数必须至少为 1")
    if tickets_per_house < 0:
        raise DemoAppError("每户平均报修数不能为负")
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        ids = _id_plan(engine, houses, tickets_per_house)
    finally:
        engine.dispose()
    gen = Generator(seed_value, now, tickets_per_house)
    total: dict[str, int] = {t.name: 0 for t in TABLES}
    rows_done = done = 0
    job = _Job(url, gen, ids)
    size = max(1, chunk_size)
    spans = [(s, min(size, ids.last_house + 1 - s)) for s in range(ids.first_house, ids.last_house + 1, size)]
    n_workers = min(workers or default_workers(url), len(spans))

    def account(result: tuple[int, dict[str, int]]) -> None:
        nonlocal rows_done, done
        n, counts = result
        for name, count in counts.items():
            total[name] += count
        done += n
        rows_done += sum(counts.values())
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
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(n_workers, initializer=_worker_init, initargs=(job,)) as pool:
            for result in pool.imap_unordered(_worker_run, spans):
                account(result)
    _analyze(url)
    return SeedResult(done, total["residents"], total["repair_tickets"], rows_done, time.perf_counter() - started,
                      ids.first_house, total)


def _analyze(url: str) -> None:
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
    """The 客户通 demo app has no Redis store: nothing to count."""
    return {}


def parse_now(value: str) -> datetime:
    """``YYYY-MM-DD`` (noon) or ``YYYY-MM-DDTHH:MM[:SS]``, Beijing time (naive)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time()).replace(hour=12)
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise DemoAppError(f"无效的时间 {value!r}：应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM") from None
