"""Minors (未成年人): who is an adult, who needs a guardian's consent, and how guardians are recorded.

- M2 (民法典 18): adults are 18 and over; a 16- or 17-year-old living mainly on their own labour income is
  treated as an adult when the declaration accepts that (``minors.self_supporting_16``) and the person has
  been recorded as self-supporting.
- M1 (PIPL 28, 31): under 14, every item is sensitive and a parent's or guardian's consent is needed; a
  declaration may ask for a guardian's consent up to a higher age (``minors.guardian_consent_under``).
- M3 (未成年人保护法 72): PI of a minor without verifiable guardian consent is deleted.

A guardian's objection and a person's self-supporting status reach the gate as two markers in the subject's
restriction projection (:data:`OBJECTION`, :data:`SELF_SUPPORTING`), which only the minors use case writes
(a person's own restriction request accepts ``all`` and ``feature:<id>`` only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from yinsi.domain.consent import age_on
from yinsi.domain.policy import Minors

ADULT_AGE = 18
SELF_SUPPORTING_AGE = 16
CHILD_AGE = 14

#: restriction-projection markers written by the minors use case only
OBJECTION = "minor:guardian_objection"
SELF_SUPPORTING = "minor:self_supporting"
MINOR_MARKERS = frozenset({OBJECTION, SELF_SUPPORTING})


class Relation(StrEnum):
    """The guardian's relation to the minor (民法典 27)."""

    FATHER = "father"
    MOTHER = "mother"
    GRANDPARENT = "grandparent"
    SIBLING = "sibling"
    OTHER_GUARDIAN = "other_guardian"


RELATION_ZH: dict[Relation, str] = {
    Relation.FATHER: "父亲", Relation.MOTHER: "母亲", Relation.GRANDPARENT: "祖父母、外祖父母",
    Relation.SIBLING: "兄、姐", Relation.OTHER_GUARDIAN: "其他监护人",
}


class Verification(StrEnum):
    """How the guardian's identity and relation were verified (可验证的监护人同意)."""

    ID_DOCUMENT = "id_document"  # the guardian's ID and a document showing the relation (户口簿、出生医学证明)
    FACE = "face"  # face verification of the guardian against the ID
    SMS_ID_MATCH = "sms_id_match"  # a code to a phone registered to the guardian's ID
    IN_PERSON = "in_person"  # checked in person by staff


VERIFICATION_ZH: dict[Verification, str] = {
    Verification.ID_DOCUMENT: "身份证件与关系证明", Verification.FACE: "人脸核验",
    Verification.SMS_ID_MATCH: "实名手机号验证码", Verification.IN_PERSON: "工作人员当面核验",
}


@dataclass(frozen=True, slots=True)
class AgeStatus:
    """What the law makes of a person's age on a day."""

    age: int
    adult: bool  # an adult, or treated as one (self-supporting, M2)
    guardian_needed: bool
    child: bool  # under 14: all PI sensitive (M1)
    rule: str | None  # the rule that asks for the guardian (M1 or M2), else None
    message: str


def classify(birth: date, today: date, minors: Minors, self_supporting: bool = False) -> AgeStatus:
    """The age status on ``today`` of a person born on ``birth`` under the declaration's minors section."""
    age = age_on(birth, today)
    adult_age = max(ADULT_AGE, minors.adult_age or ADULT_AGE)  # a declaration may be stricter, never laxer
    if age < CHILD_AGE:
        return AgeStatus(age, False, True, True, "M1", "不满十四周岁：处理其个人信息须取得父母或其他监护人的同意"
                         "（PIPL 28、31）")
    supported = bool(minors.self_supporting_16) and self_supporting and age >= SELF_SUPPORTING_AGE
    if age >= adult_age or supported:
        why = "已成年" if age >= adult_age else "十六周岁以上、以自己的劳动收入为主要生活来源，视为成年人（民法典 18）"
        return AgeStatus(age, True, False, False, None, why)
    under = minors.guardian_consent_under or 0
    if age < under:
        return AgeStatus(age, False, True, False, "M2", f"未满{under}周岁：隐私政策规定须取得监护人同意")
    return AgeStatus(age, False, False, False, None, "已满十四周岁的未成年人可自行同意（PIPL 31）")


def self_supporting_refusal(birth: date | None, today: date, minors: Minors) -> str | None:
    """Why a person cannot be recorded as self-supporting (M2), or ``None`` when they can."""
    if not minors.self_supporting_16:
        return "隐私政策未接受以自己劳动收入为主要生活来源的十六周岁以上未成年人视为成年人（M2）"
    if birth is None:
        return "尚未登记出生日期，无法认定年龄（M2）"
    age = age_on(birth, today)
    if age < SELF_SUPPORTING_AGE:
        return f"未满十六周岁（{age}周岁），不能视为成年人（民法典 18，M2）"
    return None
