"""Display masks per type, and mask_text that leaves no detected value behind."""

from __future__ import annotations

import pytest

from yinsi.protect.masking import mask_results, mask_text, mask_value
from yinsi.scan import PATTERN_TYPES, scan_text


@pytest.mark.parametrize(("pi_type", "value", "masked"), [
    ("mobile_phone", "13800138000", "138****8000"),
    ("mobile_phone", "+86 138-0013-8000", "+86 138****8000"),
    ("mobile_phone", "１３８００１３８０００", "138****8000"),
    ("landline_phone", "(010)62345678", "010-****5678"),
    ("landline_phone", "0571-8765432", "0571-***5432"),
    ("id_card", "11010519491231002X", "110105********002X"),
    ("bank_card", "6222 0200 0000 0000 000", "**** **** **** 0000"),
    ("bank_card", "4367421234567896", "**** **** **** 7896"),
    ("person_name", "张三", "张*"),
    ("person_name", "王小明", "王**"),
    ("person_name", "欧阳娜娜", "欧阳**"),
    ("person_name", "司马光", "司马*"),
    ("email", "zhang.san@example.com", "z***@example.com"),
    ("address", "北京市朝阳区建国路88号", "北京市朝阳区***"),
    ("address", "广东省深圳市南山区科技园南区", "广东省深圳市南山区***"),
    ("address", "浙江省杭州市余杭县良渚镇", "浙江省杭州市余杭县***"),
    ("address", "杭州市西湖路1号", "杭州市***"),
    ("ip_address", "192.168.1.10", "192.168.*.*"),
    ("ip_address", "2001:db8::1", "2001:db8:*:*:*:*:*:*"),
    ("imei", "356938035643809", "35693803*******"),
    ("mac_address", "00:1A:2B:3C:4D:5E", "00:1A:2B:**:**:**"),
    ("passport", "E12345678", "E******78"),
    ("license_plate", "京A12345", "京A****5"),
    ("license_plate", "粤BD12345", "粤B*****5"),
    ("qq", "123456789", "12*****89"),
    ("wechat_id", "zhang_san88", "z*********8"),
])
def test_display_masks(pi_type: str, value: str, masked: str) -> None:
    assert mask_value(pi_type, value) == masked


def test_bank_card_mask_hides_the_card_length() -> None:
    assert mask_value("bank_card", "6222020000000000000") == mask_value("bank_card", "4367421234560000")[:-4] + "0000"


def test_mask_text_leaves_no_detected_value() -> None:
    text = ("客户手机１３８－００１３－８０００，座机010-62345678，身份证11010519491231002X，"
            "银行卡6222 0200 0000 0000 000，邮箱zhang@example.com，登录IP 10.2.3.4，IMEI 356938035643809，"
            "MAC 00:1A:2B:3C:4D:5E，护照E12345678，车牌京A12345，QQ：123456789，微信号 zhang_san88。")
    found = scan_text(text, types=PATTERN_TYPES)
    assert len(found) == 12
    masked = mask_text(text, types=PATTERN_TYPES)
    for r in found:
        assert r.text not in masked
    assert scan_text(masked, types=PATTERN_TYPES) == []
    assert masked.startswith("客户手机138****8000，座机010-****5678，身份证110105********002X，")


def test_mask_results_keeps_the_text_between_spans() -> None:
    text = "电话13800138000。"
    assert mask_results(text, scan_text(text, types=PATTERN_TYPES)) == "电话138****8000。"
    assert mask_results(text, []) == text
