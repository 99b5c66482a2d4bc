"""The retention planner: nothing expires before its time, nothing is held past it (fixed clocks only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from yinsi.declarations import load_declaration
from yinsi.domain.lint import lint_declaration
from yinsi.domain.retention import TableRule, decide, first_expiry, statutory_minimum

ROOT = Path(__file__).resolve().parents[1]
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))
rules = st.builds(
    TableRule, store=st.just("app"), table=st.just("t"), time_column=st.just("at"),
    max_days=st.integers(1, 4000), action=st.sampled_from(["delete", "anonymise"]),
    hold_days=st.none() | st.integers(1, 4000), hold_column=st.none() | st.just("paid_at"))


@given(rules, times, times, st.none() | times)
def test_nothing_expires_before_its_time_nor_is_held_past_it(rule: TableRule, dated: datetime, now: datetime,
                                                             hold_dated: datetime | None) -> None:
    d = decide(rule, dated, now, hold_dated)
    due = dated + timedelta(days=rule.max_days)
    hold_end = (hold_dated or dated) + timedelta(days=rule.hold_days) if rule.hold_days else None
    if d.verdict == "expire":
        assert now >= due
        assert hold_end is None or now >= hold_end
    else:
        assert d.until is not None and now < d.until
    # the moment it becomes due is exactly first_expiry: held/kept before, expired from then on
    end = first_expiry(rule, dated, hold_dated)
    assert decide(rule, dated, end, hold_dated).verdict == "expire"
    assert decide(rule, dated, end - timedelta(microseconds=1), hold_dated).verdict != "expire"


@given(rules, times, times)
def test_sql_cutoffs_agree_with_the_row_decision(rule: TableRule, dated: datetime, now: datetime) -> None:
    """The sweep's WHERE (time_column <= cutoff and hold date <= hold_cutoff) selects exactly the expired rows."""
    hold_cut = rule.hold_cutoff(now)
    selected = dated <= rule.cutoff(now) and (hold_cut is None or dated <= hold_cut)
    assert selected == (decide(rule, dated, now).verdict == "expire")


def test_law_outlasts_a_shorter_promise() -> None:
    law = statutory_minimum(["online.ip_address"])
    assert law is not None and law.rule == "T2" and law.min_days == 180
    assert statutory_minimum(["transaction.amount"]).min_days == 3 * 365  # type: ignore[union-attr]
    assert statutory_minimum(["basic.nickname"]) is None


def test_lint_names_t2_when_the_ip_promise_is_shorter_than_network_logs_must_be_kept() -> None:
    findings = lint_declaration(load_declaration(ROOT / "policies" / "weiliaoke-2022.yaml"))
    t2 = [f for f in findings if f.rule == "T2" and f.path.endswith("period_days")]
    assert len(t2) == 1 and "180" in t2[0].message and "网络安全法" in t2[0].message


def test_demo_ip_logs_promise_one_day_and_the_law_keeps_them_six_months() -> None:
    from yinsi.datamap_io import load_datamap
    from yinsi.domain.retention import table_rules

    dm = load_datamap(ROOT / "examples" / "weiliaoke_app" / "datamap.yaml").datamap
    (rule,) = [r for r in table_rules(dm, load_declaration(ROOT / "policies" / "weiliaoke-2022.yaml"))
               if r.table == "ip_logs"]
    assert (rule.time_column, rule.max_days, rule.action) == ("visited_at", 1, "delete")
    assert (rule.hold_days, rule.hold_rule) == (180, "T2")
    visited = datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert decide(rule, visited, visited + timedelta(days=2)).verdict == "held"
    assert decide(rule, visited, visited + timedelta(days=180)).verdict == "expire"


LAWS = {"online.ip_address": 180, "transaction.amount": 3 * 365, "basic.nickname": 0}


@settings(deadline=None, max_examples=60)  # each example parses a data map
@given(st.integers(1, 2000), st.sampled_from(sorted(LAWS)), st.none() | st.integers(1, 2000), times, times)
def test_the_rules_from_a_map_keep_rows_exactly_as_long_as_the_longest_duty(
        max_days: int, item: str, hold: int | None, dated: datetime, now: datetime) -> None:
    """From the data map to the row: a row expires exactly when its period, any declared hold and any law that
    covers its items have all run out (nothing deleted before its time, nothing held past it)."""
    from yinsi.datamap_io import parse_datamap
    from yinsi.domain.retention import table_rules

    held = f"\n        legal_hold: {{basis: 合同约定, rule: T2, min_days: {hold}}}" if hold else ""
    dm = parse_datamap(f"""
schema_version: 1
tenant: shop
subjects:
  - {{id: user, name: 用户, store: app, table: t, key: user_id}}
stores:
  - id: app
    kind: sql
    name: 业务库
    tables:
      t:
        reach: {{user: {{key: user_id}}}}
        erase: delete_row
        retention: {{max_days: {max_days}, time_column: at}}{held}
        columns:
          id: {{not_pi: true, why: 编号}}
          user_id: {{not_pi: true, why: 关联键}}
          v: {{item: {item}}}
          at: {{not_pi: true, why: 时间}}
""").datamap
    (rule,) = table_rules(dm)
    longest = max(max_days, LAWS[item], hold or 0)
    assert first_expiry(rule, dated) == dated + timedelta(days=longest)
    assert (decide(rule, dated, now).verdict == "expire") == (now >= dated + timedelta(days=longest))
