"""Pattern types on the hard cases: context weighs what a nearby word says about the number, never vetoes it by
mere presence; amounts, invoice/student numbers and numbers in URLs or file names are no phones; the less
common formats are found."""

from __future__ import annotations

import pytest

from yinsi.scan import PATTERN_TYPES, scan_text


def found(text: str) -> list[tuple[str, str]]:
    return [(r.type, r.text) for r in scan_text(text, types=PATTERN_TYPES)]


# --- a look-alike word nearby, but the number is a phone ----------------------------------------------------
@pytest.mark.parametrize("text", [
    "验证码已发送至13812345678，5分钟内有效",        # the code was sent TO this number
    "单号查询请拨13812345678",                        # "please dial" this number to look up an order
    "快递员电话13812345678，到了会打给你",            # the courier's phone
    "订单已发货，收货人13812345678",                  # the order word is in another clause
    "订单号：20231001001。联系人手机13812345678",     # the order number is another value
    "请把发票寄给我，手机13812345678",
])
def test_a_lookalike_word_that_does_not_label_the_number_leaves_a_phone(text: str) -> None:
    assert found(text) == [("mobile_phone", "13812345678")]


# --- the look-alike word labels this very number: not a phone -----------------------------------------------
@pytest.mark.parametrize("text", [
    "订单号：13812345678，请付款",
    "订单编号为13812345678",
    "发票号码13812345678",
    "发票代码：13812345678",
    "学号 13812345678",
    "运单号13812345678已签收",
    "成交额15000000000元",
    "价格 13812345678.00 元",
    "本月营收¥13812345678",
    "库存数量13812345678件",
    "详情见 https://shop.example.cn/item/13812345678?from=app",
    "www.example.cn/u/13812345678",
    "附件：IMG_13812345678.jpg",
    "报告 13812345678.pdf 已上传",
])
def test_amounts_codes_urls_and_file_names_are_no_phones(text: str) -> None:
    assert [t for t, _ in found(text) if t in ("mobile_phone", "landline_phone")] == []


def test_a_phone_parameter_inside_a_url_is_still_a_phone() -> None:
    assert found("回调 https://x.cn/cb?phone=13812345678") == [("mobile_phone", "13812345678")]


def test_two_numbers_joined_by_a_slash_are_two_phones() -> None:
    assert found("电话：13812345678/13912345678") == [("mobile_phone", "13812345678"),
                                                    ("mobile_phone", "13912345678")]


# --- tables: the header is each cell's context ----------------------------------------------------------------
def test_csv_order_number_column_beside_a_phone_column() -> None:
    csv_text = "收件人电话,关联订单号\n13812345678,13912345678\n13512345678,13612345678\n"
    assert found(csv_text) == [("mobile_phone", "13812345678"), ("mobile_phone", "13512345678")]


def test_csv_order_column_first_and_a_phone_column_after_it() -> None:
    tsv = "订单号\t手机\n13912345678\t13812345678\n"
    assert found(tsv) == [("mobile_phone", "13812345678")]


def test_a_word_on_the_previous_line_does_not_describe_the_number() -> None:
    assert found("订单号\n13812345678") == [("mobile_phone", "13812345678")]


# --- formats ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value", "pi_type"), [
    ("手机 138.1234.5678 随时联系", "138.1234.5678", "mobile_phone"),
    ("号码8613812345678", "8613812345678", "mobile_phone"),
    ("8613812345678", "8613812345678", "mobile_phone"),
    ("请拨 +86 138 1234 5678", "+86 138 1234 5678", "mobile_phone"),
    ("电话 0755-8888 6666", "0755-8888 6666", "landline_phone"),
    ("身份证 1101 0519 4912 3100 2X", "1101 0519 4912 3100 2X", "id_card"),
    ("身份证 1101-0519-4912-3100-2X", "1101-0519-4912-3100-2X", "id_card"),
    ("老身份证号110105491231002", "110105491231002", "id_card"),
    ("卡号622202 0000000000000", "622202 0000000000000", "bank_card"),
])
def test_less_common_formats_are_found(text: str, value: str, pi_type: str) -> None:
    results = scan_text(text, types=PATTERN_TYPES)
    assert [(r.type, r.text, r.start) for r in results] == [(pi_type, value, text.index(value))]


def test_old_15_digit_number_needs_an_id_word_and_a_real_date() -> None:
    assert found("编号110105491231002") == []
    assert found("身份证号110105491331002") == []  # month 13


def test_an_amount_with_decimals_is_not_cut_into_a_phone() -> None:
    assert found("合同金额 15912345678.50") == []


def test_the_explanation_says_why_a_nearby_lookalike_word_did_not_decide() -> None:
    r = scan_text("订单已发货，收货人13812345678", types=["mobile_phone"])[0]
    assert "订单" in r.explanation and r.score < 0.75


# --- the engine's prefilters change speed, not results ----------------------------------------------------------
def test_a_long_text_is_matched_around_digit_runs_with_the_same_results() -> None:
    import yinsi.scan.engine as engine

    prose = "今天天气不错，我们去公园散步，顺便买了点水果回来。" * 20
    text = (prose + "手机：+86 138 1234 5678。" + prose + "身份证 1101 0519 4912 3100 2X，护照E12345678，"
            "电话(010)62345678。" + prose + "成交额15000000000元。")
    assert len(text) >= engine.WINDOW_MIN_CHARS
    windowed = scan_text(text, types=PATTERN_TYPES)
    original = engine.WINDOW_MIN_CHARS
    engine.WINDOW_MIN_CHARS = 10**9
    try:
        whole = scan_text(text, types=PATTERN_TYPES)
    finally:
        engine.WINDOW_MIN_CHARS = original
    assert windowed == whole
    assert [r.type for r in windowed] == ["mobile_phone", "id_card", "passport", "landline_phone"]


def test_the_name_tagger_runs_only_on_sentences_that_can_hold_a_name_or_address() -> None:
    from yinsi.scan.engine import name_segments

    text = "ok 12345。\n姓名：常建良，性别：男。\n2023-10-01 10:00:00 ok\n住址：北京市海淀区中关村大街1号"
    segments = [text[a:b] for a, b in name_segments(text)]
    assert segments == ["姓名：常建良，性别：男。", "住址：北京市海淀区中关村大街1号"]


def test_a_full_scan_keeps_pattern_values_the_tagger_runs_over() -> None:
    text = "网卡MAC d9-2d-d7-8f-72-18 已登记，请填写护照号E18772086，QQ号272723。"
    types = [r.type for r in scan_text(text) if r.type in PATTERN_TYPES]
    assert types == ["mac_address", "passport", "qq"]


# --- database columns: the column name is the values' label ------------------------------------------------------
def test_an_order_number_column_is_not_proposed_as_phones_but_the_phone_column_beside_it_is() -> None:
    from yinsi.scan.columns import NOT_PI, propose

    values = ["13812345678", "13912345678", "15912345670"]
    for column in ("关联订单号", "order_no", "invoiceNumber", "学号"):
        proposal = propose("orders", column, "VARCHAR(20)", values)
        assert proposal.pi_item == NOT_PI and proposal.pi_type is None, column
    assert propose("orders", "收件人电话", "VARCHAR(20)", values).pi_type == "mobile_phone"
    assert propose("orders", "receiver_mobile", "VARCHAR(20)", values).pi_item == "contact.mobile"
