"""Person names and addresses from the shipped tagger (skipped when the trained artefact is missing)."""

from __future__ import annotations

import pytest

from yinsi.protect.masking import mask_text
from yinsi.scan import scan_text
from yinsi.scan.ner.model import load_default_model, tags_to_spans

needs_model = pytest.mark.skipif(
    load_default_model() is None,
    reason="名字/地址模型未训练：python -m yinsi.scan.ner.train ../shared/data/cluener/train.json --extra bench/.cache/ner",
)


def test_bio_tags_become_spans() -> None:
    assert tags_to_spans(["B-name", "I-name", "O", "I-address", "I-address", "B-name"]) == [
        ("name", 0, 2), ("address", 3, 5), ("name", 5, 6)]


@needs_model
def test_names_and_addresses_in_plain_sentences() -> None:
    text = "张三的手机号是13800138000，他住在北京市朝阳区建国路88号。"
    found = [(r.type, r.text) for r in scan_text(text)]
    assert ("person_name", "张三") in found
    assert ("mobile_phone", "13800138000") in found
    assert any(t == "address" and v.startswith("北京市朝阳区") for t, v in found)


@needs_model
def test_offsets_of_model_results_index_the_original_text() -> None:
    text = "联系人：李明，地址：广东省深圳市南山区科技园。"
    for r in scan_text(text, types=["person_name", "address"]):
        assert text[r.start:r.end] == r.text and not r.validated


@needs_model
def test_mask_text_generalises_addresses_and_keeps_surnames() -> None:
    masked = mask_text("张三的手机号是13800138000，他住在北京市朝阳区建国路88号。")
    assert "张*" in masked and "138****8000" in masked and "北京市朝阳区***" in masked
    assert "建国路" not in masked
