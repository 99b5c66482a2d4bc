"""Reply deadlines on the Chinese holiday calendar (RULES D1–D3, R9, R10): every expected date is a literal,
counted by hand on the 2026 calendar below (W = working day, H = official holiday block, r = ordinary
weekend, M = make-up working day 调休上班):

    Feb 2026  Mo Tu We Th Fr Sa Su           Mar 2026  Mo Tu We Th Fr Sa Su
               9W 10W 11W 12W 13W 14M 15H              2W  3W  4W  5W  6W  7r  8r
              16H 17H 18H 19H 20H 21H 22H              9W 10W 11W 12W 13W 14r 15r
              23H 24W 25W 26W 27W 28M                 16W ...
    Sep 2026  14W 15W 16W 17W 18W 19r 20M    Oct 2026            1H  2H  3H  4H
              21W 22W 23W 24W 25H 26H 27H              5H  6H  7H  8W  9W 10M 11r
              28W 29W 30W                             12W 13W 14W 15W 16W 17r 18r
                                                      19W 20W 21W 22W 23W 24r 25r  26W 27W ...
    Dec 2026  14W 15W 16W 17W 18W 19r 20r
              21W 22W 23W 24W 25W 26r 27r  28W 29W 30W 31W   (2027: not in chinesecalendar 1.11.0)

(25–27 Sep 2026 is the Mid-Autumn block.)
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import POLICIES
from yinsi.declarations import load_declaration
from yinsi.domain.deadlines import (
    Calendar,
    CalendarNotCovered,
    Ceiling,
    ChineseCalendar,
    DeadlineStatus,
    Reading,
    deadline_for,
    due_date,
    status,
    statutory_ceiling,
    working_days_left,
)
from yinsi.domain.policy import Cancellation, DayUnit, Declaration, ReplyTime, RightKind, Source

CAL = ChineseCalendar()
D = date


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


@cache
def seed(name: str) -> Declaration:
    return load_declaration(POLICIES / f"{name}.yaml")


# --- the data agrees with RULES D3 ----------------------------------------------------------------------

def test_calendar_data_matches_rules_d3_spring_festival() -> None:
    for d in days(D(2026, 2, 15), D(2026, 2, 23)):  # off 15–23 Feb
        assert not CAL.is_workday(d), d
        assert CAL.is_statutory_holiday(d), d
    for d in (D(2026, 2, 14), D(2026, 2, 28)):  # Saturdays worked
        assert d.weekday() == 5
        assert CAL.is_workday(d)
        assert not CAL.is_statutory_holiday(d)
    assert CAL.is_workday(D(2026, 2, 13)) and CAL.is_workday(D(2026, 2, 24))  # the block's neighbours


def test_calendar_data_matches_rules_d3_national_day() -> None:
    for d in days(D(2026, 10, 1), D(2026, 10, 7)):  # off 1–7 Oct
        assert not CAL.is_workday(d), d
        assert CAL.is_statutory_holiday(d), d
    assert D(2026, 9, 20).weekday() == 6 and CAL.is_workday(D(2026, 9, 20))  # Sunday worked
    assert D(2026, 10, 10).weekday() == 5 and CAL.is_workday(D(2026, 10, 10))  # Saturday worked
    assert not CAL.is_statutory_holiday(D(2026, 9, 20)) and not CAL.is_statutory_holiday(D(2026, 10, 10))


def test_an_ordinary_weekend_is_a_rest_day_but_not_a_statutory_holiday() -> None:
    for d in (D(2026, 3, 7), D(2026, 3, 8), D(2026, 10, 11)):
        assert not CAL.is_workday(d)
        assert not CAL.is_statutory_holiday(d)
    assert isinstance(CAL, Calendar)  # structural check of the protocol's method names
    assert CAL.covers(2004) and CAL.covers(2026)


# --- working days (D2) ------------------------------------------------------------------------------------

def test_15_working_days_from_10_feb_2026_skip_the_spring_festival_and_count_both_makeup_saturdays() -> None:
    # 11(1) 12(2) 13(3) Sat14(4) | 15–23 off | 24(5) 25(6) 26(7) 27(8) Sat28(9) | Sun 1 Mar |
    # 2(10) 3(11) 4(12) 5(13) 6(14) | 7–8 weekend | 9(15)
    assert due_date(D(2026, 2, 10), 15, "working", False, CAL) == D(2026, 3, 9)


def test_received_on_a_makeup_saturday_the_start_day_itself_is_not_counted() -> None:
    # received Sat 14 Feb (worked, but the day of receipt never counts) | 15–23 off |
    # 24(1) 25(2) 26(3) 27(4) Sat28(5) 2 Mar(6) 3(7) 4(8) 5(9) 6(10) 9(11) 10(12) 11(13) 12(14) 13(15)
    assert due_date(D(2026, 2, 14), 15, "working", False, CAL) == D(2026, 3, 13)


def test_received_on_a_holiday_counts_from_the_first_working_day_and_find_workday_is_off_by_one() -> None:
    # received Sun 15 Feb (holiday): the same 15 days as above, 24 Feb(1) … 13 Mar(15)
    assert due_date(D(2026, 2, 15), 15, "working", False, CAL) == D(2026, 3, 13)
    # RULES D2: the library helper over-counts by one from a rest day; this is why it is not used.
    assert chinese_calendar.find_workday(15, D(2026, 2, 15)) == D(2026, 3, 16)


def test_15_working_days_from_30_sep_2026_cross_national_day_and_count_saturday_10_oct() -> None:
    # 1–7 Oct off | 8(1) 9(2) Sat10(3) | Sun 11 | 12(4) 13(5) 14(6) 15(7) 16(8) | 17–18 |
    # 19(9) 20(10) 21(11) 22(12) 23(13) | 24–25 | 26(14) 27(15)
    assert due_date(D(2026, 9, 30), 15, "working", False, CAL) == D(2026, 10, 27)


def test_15_working_days_from_18_sep_2026_count_sunday_20_sep_and_skip_mid_autumn() -> None:
    # Sat 19 | Sun20(1) 21(2) 22(3) 23(4) 24(5) | 25–27 Mid-Autumn | 28(6) 29(7) 30(8) | 1–7 Oct |
    # 8(9) 9(10) Sat10(11) | 11 | 12(12) 13(13) 14(14) 15(15)
    assert due_date(D(2026, 9, 18), 15, "working", False, CAL) == D(2026, 10, 15)


def test_holidays_extended_changes_nothing_for_working_days() -> None:
    assert due_date(D(2026, 2, 10), 15, DayUnit.WORKING, True, CAL) == D(2026, 3, 9)


# --- natural days (D1) and 顺延 ------------------------------------------------------------------------------

def test_7_natural_days_ending_inside_the_spring_festival_move_to_24_feb() -> None:
    # 12 Feb + 7 = Thu 19 Feb, inside the 15–23 block → first working day after it: Tue 24 Feb
    assert due_date(D(2026, 2, 12), 7, "natural", False, CAL) == D(2026, 2, 24)
    # the narrower reading of D1 moves it too: 19 Feb is an official holiday
    assert due_date(D(2026, 2, 12), 7, "natural", False, CAL, reading=Reading(roll_on="statutory_holiday")) == D(2026, 2, 24)


def test_15_natural_days_plain_and_with_holidays_extended_across_the_spring_festival() -> None:
    # plain: 10 Feb + 15 = Wed 25 Feb, a working day
    assert due_date(D(2026, 2, 10), 15, "natural", False, CAL) == D(2026, 2, 25)
    # 顺延: 11(1) 12(2) 13(3) 14(4) | 15–23 not counted (9 days) | 24(5) 25(6) 26(7) 27(8) 28(9)
    # 1 Mar(10) 2(11) 3(12) 4(13) 5(14) 6(15) → Fri 6 Mar, a working day
    assert due_date(D(2026, 2, 10), 15, "natural", True, CAL) == D(2026, 3, 6)
    # reading 顺延 as D1 alone gives the plain date back
    assert due_date(D(2026, 2, 10), 15, "natural", True, CAL, reading=Reading(extension="end_only")) == D(2026, 2, 25)


def test_holidays_extended_period_ending_on_a_weekend_then_moves_by_d1() -> None:
    # 13(1) 14(2) | 15–23 | 24(3) 25(4) 26(5) 27(6) 28(7) 1 Mar(8) 2(9) 3(10) 4(11) 5(12) 6(13) 7(14) 8(15)
    # → Sun 8 Mar, a rest day → Mon 9 Mar
    assert due_date(D(2026, 2, 12), 15, "natural", True, CAL) == D(2026, 3, 9)
    assert due_date(D(2026, 2, 12), 15, "natural", True, CAL, reading=Reading(roll_on="statutory_holiday")) == D(2026, 3, 8)


def test_7_days_extended_from_12_feb_end_on_the_makeup_saturday_which_stands() -> None:
    # 13(1) 14(2) | 15–23 | 24(3) 25(4) 26(5) 27(6) 28(7) → Sat 28 Feb, worked: no move
    assert due_date(D(2026, 2, 12), 7, "natural", True, CAL) == D(2026, 2, 28)


def test_natural_days_ending_on_an_ordinary_weekend_or_a_makeup_saturday() -> None:
    # Mon 2 Mar + 5 = Sat 7 Mar (ordinary weekend) → Mon 9 Mar; the narrow reading leaves it on Sat 7 Mar
    assert due_date(D(2026, 3, 2), 5, "natural", False, CAL) == D(2026, 3, 9)
    assert due_date(D(2026, 3, 2), 5, "natural", False, CAL, reading=Reading(roll_on="statutory_holiday")) == D(2026, 3, 7)
    # Sat 7 Feb + 7 = Sat 14 Feb, a make-up working day: it stands
    assert due_date(D(2026, 2, 7), 7, "natural", False, CAL) == D(2026, 2, 14)


def test_30_days_ending_in_national_day_move_to_8_oct() -> None:
    # 5 Sep + 30: Sep has 30 days, 5 + 25 = 30 Sep, + 5 = Mon 5 Oct (holiday) → Thu 8 Oct
    assert due_date(D(2026, 9, 5), 30, "natural", False, CAL) == D(2026, 10, 8)


# --- fail closed --------------------------------------------------------------------------------------------

def test_the_calendar_refuses_years_it_does_not_cover() -> None:
    assert not CAL.covers(2027) and not CAL.covers(2003)
    for d in (D(2027, 1, 4), D(2003, 12, 31)):
        with pytest.raises(CalendarNotCovered, match=str(d.year)):
            CAL.is_workday(d)
        with pytest.raises(CalendarNotCovered, match=str(d.year)):
            CAL.is_statutory_holiday(d)
    assert issubclass(CalendarNotCovered, ValueError)


def test_15_working_days_from_mid_december_2026_run_into_2027_and_raise() -> None:
    # 16(1) 17(2) 18(3) 21(4) 22(5) 23(6) 24(7) 25(8) 28(9) 29(10) 30(11) 31(12) → 3 more in 2027: refuse
    with pytest.raises(CalendarNotCovered) as info:
        due_date(D(2026, 12, 15), 15, "working", False, CAL)
    assert info.value.year == 2027
    assert "2027 年" in str(info.value) and "2004–2026" in str(info.value)


def test_a_period_ending_exactly_on_31_dec_2026_is_still_computed() -> None:
    # 11(1) 14(2) 15(3) 16(4) 17(5) 18(6) 21(7) 22(8) 23(9) 24(10) 25(11) 28(12) 29(13) 30(14) 31(15)
    assert due_date(D(2026, 12, 10), 15, "working", False, CAL) == D(2026, 12, 31)


def test_natural_days_into_2027_raise_rather_than_guess() -> None:
    with pytest.raises(CalendarNotCovered):
        due_date(D(2026, 12, 25), 7, "natural", False, CAL)  # 1 Jan 2027
    with pytest.raises(CalendarNotCovered):
        due_date(D(2026, 12, 28), 7, "natural", True, CAL)  # counting runs into 2027
    # and the seeds' promises refuse the same way
    with pytest.raises(CalendarNotCovered):
        deadline_for(seed("weiliaoke-2022"), RightKind.ACCESS, D(2026, 12, 24), CAL)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        due_date(D(2026, 3, 2), 0, "natural", False, CAL)
    with pytest.raises(ValueError, match="natural"):
        due_date(D(2026, 3, 2), 5, "weeks", False, CAL)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        due_date(datetime(2026, 3, 2, 23, 30), 5, "natural", False, CAL)
    with pytest.raises(TypeError):
        CAL.is_workday(datetime(2026, 3, 2, 1, 0))


# --- the seeds' promises and the statutory ceilings ---------------------------------------------------------

RECEIVED = D(2026, 2, 10)
# The ceilings from 10 Feb 2026: 15 working days → Mon 9 Mar (counted above);
# 30 days → 10 Feb + 18 = 28 Feb, + 12 = Thu 12 Mar, a working day.
SEEDS = {
    # name: (promise due, hand count)
    "weiliaoke-2020": D(2026, 2, 26),  # 7天（顺延）: 11(1) 12(2) 13(3) 14(4) | 15–23 | 24(5) 25(6) 26(7)
    "weiliaoke-2022": D(2026, 3, 6),  # 15天（顺延）: as counted above → Fri 6 Mar
    "58jingxuan-2021": D(2026, 3, 6),  # 15天（顺延）: same promise, same date
    "kehutong-2021": D(2026, 2, 25),  # 15天: 10 Feb + 15 = Wed 25 Feb
    "jikeanjia-2020": D(2026, 3, 12),  # 30天: 10 Feb + 30 = Thu 12 Mar
}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_promise_for_ordinary_requests_is_within_the_30_day_ceiling(name: str) -> None:
    dl = deadline_for(seed(name), RightKind.ACCESS, RECEIVED, CAL)
    assert dl.promise_due == SEEDS[name]
    assert dl.ceiling_due == D(2026, 3, 12)
    assert dl.due == SEEDS[name]
    assert dl.basis == "promise"  # 吉客安家 ties with the ceiling; the promise is named
    assert dl.rule_id == "R10"


@pytest.mark.parametrize("right, rule", [(RightKind.CANCEL_ACCOUNT, "R9"), (RightKind.COMPLAINT, "R10")])
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_cancellation_and_complaints_are_capped_at_15_working_days(name: str, right: RightKind, rule: str) -> None:
    dl = deadline_for(seed(name), right, RECEIVED, CAL)
    assert dl.ceiling_due == D(2026, 3, 9)
    assert dl.rule_id == rule
    if name == "jikeanjia-2020":  # 30 days → 12 Mar is later than 9 Mar: the ceiling decides
        assert (dl.due, dl.basis) == (D(2026, 3, 9), "ceiling")
        assert "以法定上限为准：2026年3月9日" in dl.explanation
    else:
        assert (dl.due, dl.basis) == (SEEDS[name], "promise")


def test_the_explanation_names_the_promise_its_wording_and_the_ceiling() -> None:
    dl = deadline_for(seed("58jingxuan-2021"), RightKind.ACCESS, RECEIVED, CAL)
    assert dl.explanation.startswith("查阅请求，2026年2月10日（星期二）收到。依据隐私政策承诺：15天内（国家法定节假日顺延）；")
    assert "国家法定节假日9天不计入（顺延）" in dl.explanation  # 15–23 Feb
    assert "截止2026年3月6日（星期五）" in dl.explanation
    assert "法定上限30天内（R10，GB/T 35273 8.7）" in dl.explanation
    assert dl.explanation.endswith("以承诺为准：2026年3月6日（星期五）。")


def test_d1_move_is_explained() -> None:
    dl = deadline_for(seed("58jingxuan-2021"), RightKind.ACCESS, D(2026, 2, 12), CAL)
    assert dl.due == D(2026, 3, 9)  # counted above: Sun 8 Mar → Mon 9 Mar
    assert "最后一日2026年3月8日（星期日）为休息日" in dl.explanation


def _no_promise(decl: Declaration) -> Declaration:
    silent = ReplyTime(days=None, source=Source(silent=True, note="文本未承诺答复时限"))
    return decl.model_copy(update={"response_time": silent})


def test_without_a_promise_the_ceiling_applies() -> None:
    decl = _no_promise(seed("kehutong-2021"))
    # 5 Sep + 30 = Mon 5 Oct (holiday) → Thu 8 Oct
    dl = deadline_for(decl, RightKind.ACCESS, D(2026, 9, 5), CAL)
    assert (dl.due, dl.basis, dl.rule_id, dl.promise, dl.promise_due) == (D(2026, 10, 8), "ceiling", "R10", None, None)
    assert "隐私政策未承诺答复时限" in dl.explanation
    # R9: 15 working days if none committed; from 30 Sep → 27 Oct (counted above)
    dl = deadline_for(decl, RightKind.CANCEL_ACCOUNT, D(2026, 9, 30), CAL)
    assert (dl.due, dl.basis, dl.rule_id) == (D(2026, 10, 27), "ceiling", "R9")


def test_a_cancellation_section_promise_takes_precedence_over_the_general_reply_time() -> None:
    decl = seed("kehutong-2021")
    assert decl.account_cancellation is not None
    own = ReplyTime(days=10, unit=DayUnit.WORKING, source=Source(section="注销", quote="10个工作日内完成注销"))
    decl = decl.model_copy(update={"account_cancellation": decl.account_cancellation.model_copy(update={"reply_time": own})})
    assert isinstance(decl.account_cancellation, Cancellation)
    # 11(1) 12(2) 13(3) 14(4) | 15–23 | 24(5) 25(6) 26(7) 27(8) 28(9) 2 Mar(10)
    dl = deadline_for(decl, RightKind.CANCEL_ACCOUNT, RECEIVED, CAL)
    assert (dl.due, dl.basis, dl.rule_id) == (D(2026, 3, 2), "promise", "R9")
    assert "依据隐私政策承诺：10个工作日内" in dl.explanation


def test_a_caller_supplied_ceiling() -> None:
    tight = Ceiling("R9", 5, DayUnit.WORKING, "测试")
    # 11(1) 12(2) 13(3) 14(4) | 15–23 | 24(5)
    dl = deadline_for(seed("kehutong-2021"), RightKind.CANCEL_ACCOUNT, RECEIVED, CAL, ceiling=tight)
    assert (dl.due, dl.basis) == (D(2026, 2, 24), "ceiling")
    assert statutory_ceiling(RightKind.DELETION) == Ceiling("R10", 30, DayUnit.NATURAL, "GB/T 35273 8.7")


# --- status --------------------------------------------------------------------------------------------------

def test_status_overdue_due_soon_on_track() -> None:
    due = D(2026, 3, 9)
    assert status(due, D(2026, 3, 10), CAL) is DeadlineStatus.OVERDUE
    assert status(due, D(2026, 3, 9), CAL) is DeadlineStatus.DUE_SOON  # due today: 0 working days left
    assert status(due, D(2026, 3, 4), CAL) is DeadlineStatus.DUE_SOON  # 5, 6, 9 Mar: 3 left
    assert status(due, D(2026, 3, 3), CAL) is DeadlineStatus.ON_TRACK  # 4, 5, 6, 9 Mar: 4 left


def test_due_soon_counts_working_days_across_the_holiday() -> None:
    # due Tue 24 Feb, today Fri 13 Feb: 11 calendar days but only Sat 14 and Tue 24 are worked
    assert working_days_left(D(2026, 2, 24), D(2026, 2, 13), CAL) == 2
    assert status(D(2026, 2, 24), D(2026, 2, 13), CAL) is DeadlineStatus.DUE_SOON
    assert status(D(2026, 2, 24), D(2026, 2, 13), CAL, soon=1) is DeadlineStatus.ON_TRACK


# --- properties against the library's own day lists (independent of our counting code) ----------------------

@settings(max_examples=300, deadline=None)
@given(received=st.dates(D(2004, 1, 1), D(2026, 10, 31)), n=st.integers(1, 30))
def test_working_days_property(received: date, n: int) -> None:
    due = due_date(received, n, "working", False, CAL)
    assert chinese_calendar.is_workday(due)
    assert len(chinese_calendar.get_workdays(received + timedelta(1), due)) == n


@settings(max_examples=300, deadline=None)
@given(received=st.dates(D(2004, 1, 1), D(2026, 10, 31)), n=st.integers(1, 30), extended=st.booleans())
def test_natural_days_property(received: date, n: int, extended: bool) -> None:
    due = due_date(received, n, "natural", extended, CAL)
    assert chinese_calendar.is_workday(due)
    # the Nth counted day: every day, or (顺延) every day outside the official holiday blocks
    counted = [d for d in days(received + timedelta(1), due) if not (extended and d in chinese_calendar.holidays)]
    assert len(counted) >= n
    # everything after the Nth counted day up to the due date is a rest day (D1 moved it there)
    assert all(not chinese_calendar.is_workday(d) for d in days(counted[n - 1], due - timedelta(1)))
    if not extended:
        assert counted[n - 1] == received + timedelta(n)
