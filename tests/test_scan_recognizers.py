"""The pattern recognizers as a specification: each type found at the right character offsets, look-alikes not."""

from __future__ import annotations

import pytest

from yinsi.scan import PATTERN_TYPES, Result, scan_text
from yinsi.scan.checksums import id_card_problem, id_check_char, luhn_check_digit, luhn_ok

FULL = str.maketrans({d: chr(ord(d) + 0xFEE0) for d in "0123456789"})


def found(text: str) -> list[tuple[str, str]]:
    return [(r.type, r.text) for r in scan_text(text, types=PATTERN_TYPES)]


def only(text: str) -> Result:
    results = scan_text(text, types=PATTERN_TYPES)
    assert len(results) == 1, results
    return results[0]


def assert_span(text: str, value: str, pi_type: str) -> None:
    r = only(text)
    start = text.index(value)
    assert (r.type, r.start, r.end, r.text) == (pi_type, start, start + len(value), value)


# --- checksums ---------------------------------------------------------------------------------------------
def test_id_check_character_follows_iso_7064_mod_11_2() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert id_card_problem("11010519491231002X") is None
    assert id_card_problem("11010519491231002x".upper()) is None
    assert "check" in (id_card_problem("110105194912310021") or "")
    assert "province" in (id_card_problem("99010519491231002X") or "")
    assert "date" in (id_card_problem("110105194902300028") or "")


def test_luhn_accepts_valid_and_rejects_changed_digit() -> None:
    assert luhn_ok("6222020000000000000") and luhn_ok("356938035643809") and luhn_ok("4367421234567896")
    assert not luhn_ok("6222020000000000007")
    assert luhn_check_digit("35693803564380") == "9"


# --- each type, with offsets into the original text ---------------------------------------------------------
@pytest.mark.parametrize("value", ["13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000",
                                   "+86-13800138000", "0086 13800138000", "(+86)13800138000"])
def test_mobile_numbers_in_common_formats(value: str) -> None:
    assert_span(f"我的手机号是{value}，请回电。", value, "mobile_phone")


def test_full_width_digits_are_found_with_offsets_into_the_original_text() -> None:
    value = "１３８－００１３－８０００"
    text = f"联系电话：{value}。"
    r = only(text)
    assert (r.start, r.end) == (5, 5 + len(value)) and text[r.start:r.end] == value == r.text


@pytest.mark.parametrize("value", ["010-62345678", "(010)62345678", "（0755）86013388", "02187654321", "0571-8765432"])
def test_landlines(value: str) -> None:
    assert_span(f"办公电话{value}，工作日接听。", value, "landline_phone")


def test_id_card_valid_checksum_and_lower_case_x() -> None:
    assert_span("身份证号码：11010519491231002X，请核对。", "11010519491231002X", "id_card")
    assert_span("证件号11010519491231002x", "11010519491231002x", "id_card")
    r = only("身份证" + "11010519491231002X".translate(FULL))
    assert r.type == "id_card" and r.validated and r.start == 3


@pytest.mark.parametrize("value", ["6222020000000000000", "6222 0200 0000 0000 000", "4367-4212-3456-7896"])
def test_bank_cards_pass_luhn_grouped_or_not(value: str) -> None:
    assert luhn_ok(value.replace(" ", "").replace("-", ""))
    assert_span(f"银行卡号{value}已绑定。", value, "bank_card")


def test_email_ip_imei_mac() -> None:
    assert_span("邮箱：zhang.san@example.com.cn，欢迎来信", "zhang.san@example.com.cn", "email")
    assert_span("登录IP：192.168.1.100，如非本人操作请改密", "192.168.1.100", "ip_address")
    assert_span("IPv6地址 2001:db8::8a2e:370:7334 已封禁", "2001:db8::8a2e:370:7334", "ip_address")
    assert_span("手机IMEI：356938035643809。", "356938035643809", "imei")
    assert_span("串号 35-693803-564380-9 已登记", "35-693803-564380-9", "imei")
    assert_span("网卡MAC地址：00:1A:2B:3C:4D:5E", "00:1A:2B:3C:4D:5E", "mac_address")
    assert_span("设备 a4-5e-60-c2-11-0f 上线", "a4-5e-60-c2-11-0f", "mac_address")


def test_passports_plates_qq_wechat() -> None:
    assert_span("护照号码：E12345678，有效期至2030年", "E12345678", "passport")
    assert_span("护照 EA1234567", "EA1234567", "passport")
    assert_span("护照号G12345678", "G12345678", "passport")
    assert_span("车牌号京A12345的车主请挪车", "京A12345", "license_plate")
    assert_span("新能源车粤BD12345免费停车", "粤BD12345", "license_plate")
    assert_span("大型新能源车沪A12345F进场", "沪A12345F", "license_plate")
    assert_span("我的QQ：123456789，加我", "123456789", "qq")
    assert_span("扣扣 87654321", "87654321", "qq")
    assert_span("我的微信号是zhang_san88，加好友请备注", "zhang_san88", "wechat_id")
    assert_span("vx：wxid_abc123 随时联系", "wxid_abc123", "wechat_id")


def test_several_values_in_one_sentence_are_returned_in_order() -> None:
    text = "张先生手机13800138000，邮箱a@b.cn，身份证11010519491231002X。"
    assert [t for t, _ in found(text)] == ["mobile_phone", "email", "id_card"]


# --- look-alikes are not PI --------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "身份证号码：110105194912310021（校验位错误）",     # wrong ISO 7064 check character
    "身份证号码：990105194912310028",                   # no such province
    "银行卡号6222020000000000007无效",                   # fails Luhn
    "IMEI 356938035643808 校验失败",                     # fails Luhn
    "订单号：13800138000，请付款",                       # order number shaped like a mobile
    "订单号：6222020000000000000，请付款",               # order number that even passes Luhn
    "快递单号 SF1234567890123 正在派送",
    "时间戳1700000000对应北京时间", "毫秒时间戳：1700000000000", "记录时间 2023-10-01 12:30:45",
    "创建于20231001123045。", "当前版本 1.2.3.4，请升级", "会议号 123 456 789",
    "验证码384756，5分钟内有效", "商品条码6901234567892", "金额合计 12,345.67 元",
    "QQ群123456789",  # a group, not a person
    "我们支持微信 WeChat 支付",
    "发送到 lin@qq.com。第2054230期中奖号码",  # "qq" inside an e-mail domain is no QQ context
])
def test_hard_negatives_are_not_reported(text: str) -> None:
    assert [t for t, _ in found(text) if t != "email"] == []


def test_a_number_embedded_in_a_longer_digit_run_is_not_cut_out() -> None:
    assert found("编码 8613800138000123 见附件") == []
    assert found("1380013800012") == []


def test_overlaps_prefer_checksum_validated_then_longer() -> None:
    # the mobile number inside the e-mail address: the longer e-mail wins
    assert found("邮箱13800138000@163.com") == [("email", "13800138000@163.com")]
    # a valid ID that also passes Luhn: the ID (stronger checks) wins over the bank card
    assert found("身份证410516201110213206")[0][0] == "id_card"


def test_results_carry_recognizer_score_and_explanation() -> None:
    r = only("身份证号码：11010519491231002X")
    assert r.recognizer == "IdCardRecognizer" and r.score == 1.0 and r.validated
    assert "MOD 11-2" in r.explanation and "身份证" in r.explanation
    assert r.to_dict() == {"type": "id_card", "start": 6, "end": 24, "text": "11010519491231002X", "score": 1.0}


def test_unknown_type_is_refused() -> None:
    from yinsi.scan import UnknownType

    with pytest.raises(UnknownType):
        scan_text("x", types=["social_security"])


def test_luhn_digit_helper_builds_valid_numbers() -> None:
    card = "622202000000000000"
    assert luhn_ok(card + luhn_check_digit(card))
