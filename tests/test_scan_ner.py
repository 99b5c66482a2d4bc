"""The name/address tagger on the failure cases of issue 15: names in form-like lines, three-character names,
neighbouring names, city prefixes of company names, and full postal addresses (skipped when the trained
artefact is missing)."""

from __future__ import annotations

import pytest

from yinsi.protect.masking import mask_text
from yinsi.scan import scan_text
from yinsi.scan.ner.features import sentence_features
from yinsi.scan.ner.model import load_default_model
from yinsi.scan.recognizers.person_and_address import merge_address_pieces

needs_model = pytest.mark.skipif(
    load_default_model() is None,
    reason="名字/地址模型未训练：python -m yinsi.scan.ner.train ../shared/data/cluener/train.json --extra bench/.cache/ner",
)


def _found(text: str, pi_type: str) -> list[str]:
    return [r.text for r in scan_text(text, types=[pi_type])]


def test_form_labels_and_surnames_become_features() -> None:
    feats = sentence_features("联系人：邵毅平 电话")
    assert "nb0" in feats[4] and "s0" in feats[4]  # 邵: right after the label 联系人：, a surname character
    assert "nb1" in feats[5]


def test_touching_address_pieces_are_joined() -> None:
    text = "广东省深圳市 南山区科技园"
    spans = [("address", 0, 6), ("address", 7, 13), ("name", 0, 0)]
    assert ("address", 0, 13) in merge_address_pieces(spans[:2], text)
    assert merge_address_pieces([("address", 0, 3), ("name", 3, 5), ("address", 5, 8)], "北京市张三上海市") == [
        ("address", 0, 3), ("name", 3, 5), ("address", 5, 8)]


@needs_model
@pytest.mark.parametrize(("text", "name"), [
    ("姓名：常建良，性别：男，年龄：45岁", "常建良"),
    ("联系人：邵毅平 电话：13812345678", "邵毅平"),
    ("收件人：欧阳明辉，联系电话见附件。", "欧阳明辉"),
])
def test_names_in_form_like_lines(text: str, name: str) -> None:
    assert name in _found(text, "person_name")


@needs_model
def test_three_character_names_are_not_cut_and_are_masked_whole() -> None:
    text = "全国政协主席李瑞环今天在北京会见了代表团。"
    assert "李瑞环" in _found(text, "person_name")
    masked = mask_text(text)
    assert "瑞" not in masked and "环" not in masked


@needs_model
def test_neighbouring_names_stay_apart() -> None:
    names = _found("出席会议的有王小明、李华和张伟强。", "person_name")
    assert {"王小明", "李华", "张伟强"} <= set(names)
    assert not any(len(n) > 4 for n in names)


@needs_model
@pytest.mark.parametrize("text", [
    "深圳市腾讯计算机系统有限公司今天发布了新产品。",
    "北京百度网讯科技有限公司与上海浦东发展银行签署合作协议。",
])
def test_city_prefix_of_a_company_is_not_an_address(text: str) -> None:
    assert _found(text, "address") == []


@needs_model
@pytest.mark.parametrize(("text", "address"), [
    ("收货地址：广东省深圳市南山区科技园科苑路15号讯美科技广场3号楼1201室，请尽快发货。",
     "广东省深圳市南山区科技园科苑路15号讯美科技广场3号楼1201室"),
    ("他家住在浙江省杭州市西湖区文三路478号华星时代广场A座802室。", "浙江省杭州市西湖区文三路478号华星时代广场A座802室"),
])
def test_full_postal_address_is_one_span(text: str, address: str) -> None:
    assert address in _found(text, "address")
