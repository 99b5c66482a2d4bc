"""The pattern types' hard set: look-alike words near real numbers, look-alike numbers near phone words, the less
common formats, in both directions, each case labelled with why.

    python -m bench.scanner.hardset            # rewrites bench/scanner/hardset.jsonl (committed, built here)

Every template carries its gold labels and a justification; each is filled with several values (different
segments, separators, full-width digits), so a case holds for the shape, not one lucky number. A line of
hardset.jsonl: ``{"text", "spans": [{"type", "start", "end"}], "why", "group"}``; ``group`` is ``positive``
(a real value next to a look-alike word or in a rare format) or ``negative`` (a look-alike that must not be
reported).
"""

from __future__ import annotations

import json
from pathlib import Path

from yinsi.scan.checksums import id_check_char, luhn_check_digit

HARDSET = Path(__file__).with_name("hardset.jsonl")

MOBILES = ["13812345678", "15912345670", "18600001111", "17712349876", "19912340000"]
LOOKALIKE_11 = ["13812345678", "15000000000", "18900002222", "13700001234"]  # mobile-shaped look-alikes
LANDLINES = ["0755-8888 6666", "010-6234 5678", "021 5098 7654", "0571-87654321"]
FULL = str.maketrans({d: chr(ord(d) + 0xFEE0) for d in "0123456789"})


def _id(first17: str) -> str:
    return first17 + id_check_char(first17)


IDS = [_id("11010519491231002"), _id("44030519900101123"), _id("32058219851224461"), _id("51010720000229318")]
OLD_IDS = ["110105491231002", "440305900101123", "320582851224461"]


def _card(payload: str) -> str:
    return payload + luhn_check_digit(payload)


CARDS_19 = [_card("622202123456789012"), _card("621700000012345678"), _card("622848001234567890")]


def fours(value: str) -> str:
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4))


def dotted(m: str) -> str:
    return f"{m[:3]}.{m[3:7]}.{m[7:]}"


def dashed(m: str) -> str:
    return f"{m[:3]}-{m[3:7]}-{m[7:]}"


# (template, type of {v} or None when {v} is a look-alike, justification)
POSITIVE_MOBILE: list[tuple[str, str]] = [
    ("验证码已发送至{v}，5分钟内有效。", "the code was sent TO the number: 验证码 is the subject, 发送至 points at the phone"),
    ("单号查询请拨{v}", "请拨 (please dial) labels the number; 单号 is what you ask about"),
    ("订单查询请拨打{v}，工作日9点到18点。", "拨打 labels the number"),
    ("快递员电话{v}，到了会打给你", "电话 is the head noun; 快递员 only says whose phone"),
    ("订单已发货，收货人{v}", "the order word is in another clause (after the comma) and does not label the number"),
    ("订单号：20231001001。联系人手机{v}", "the order number is another value in a finished sentence"),
    ("请把发票寄给我，手机{v}", "发票 is in an earlier clause; 手机 labels the number"),
    ("发票已开好，如有问题致电{v}", "致电 labels the number"),
    ("物流信息有误请联系{v}", "联系 (contact) labels the number"),
    ("退款金额已原路返回，客服热线{v}", "热线 labels the number; 金额 is in another clause"),
    ("您的验证码是384756，如非本人操作请致电{v}", "the code is 384756; 致电 labels the 11-digit number"),
    ("编号A-102的房间，房东手机{v}", "编号 labels A-102; 手机 labels the phone"),
    ("短信已发送至{v}，请注意查收", "发送至 + 短信: the destination phone"),
    ("价格面议，电话{v}", "价格 ends its clause; 电话 labels the number"),
    ("{v}", "a bare mobile number with a valid segment is a phone"),
    ("联系方式：{v}（微信同号）", "联系方式 labels the number"),
]
MOBILE_FORMATS: list[tuple[str, object, str]] = [
    ("手机 {v} 随时联系", dotted, "dots between the 3-4-4 groups"),
    ("号码{v}", lambda m: "86" + m, "country code 86 without a plus"),
    ("请拨 {v}", lambda m: "+86 " + m[:3] + " " + m[3:7] + " " + m[7:], "+86 with spaces"),
    ("电话：{v}", lambda m: "+86-" + m, "+86 with a dash"),
    ("手机{v}", dashed, "dashes between the groups"),
    ("手机号{v}", lambda m: m.translate(FULL), "full-width digits"),
]
NEGATIVE_MOBILE: list[tuple[str, str]] = [
    ("订单号：{v}，请付款", "订单号 labels the number: an order number"),
    ("订单编号为{v}", "订单编号为 labels the number"),
    ("发票号码{v}", "发票号码 labels the number (号码 qualified by 发票)"),
    ("发票代码：{v}", "an invoice code"),
    ("学号 {v}", "a student number"),
    ("运单号{v}已签收", "a waybill number"),
    ("工号{v}的员工", "a staff number"),
    ("成交额{v}元", "an amount: 元 after it, 成交额 before it"),
    ("价格 {v}.00 元", "an amount with decimals"),
    ("本月营收¥{v}", "a currency sign before the number"),
    ("库存数量{v}件", "a quantity with a unit"),
    ("总计{v}万", "an amount in 万"),
    ("详情见 https://shop.example.cn/item/{v}?from=app", "a path segment of a URL"),
    ("www.example.cn/u/{v}", "a URL without a scheme"),
    ("附件：IMG_{v}.jpg", "a file name"),
    ("报告 {v}.pdf 已上传", "a file name with an extension"),
    ("下载 /data/export/{v}/part-0.csv", "a directory in a path"),
    ("时间戳：{v}", "a timestamp"),
    ("快递单号 {v}，正在派送", "a waybill number"),
    ("序列号{v}", "a serial number"),
]
LANDLINE_CASES: list[tuple[str, bool, str]] = [
    ("公司电话 {v}，工作日接听", True, "a landline with the subscriber number grouped"),
    ("订单查询请拨 {v}", True, "请拨 labels the number"),
    ("{v}", True, "a bare landline with a valid area code"),
    ("发票号码 {v}", False, "an invoice number shaped like a landline"),
    ("成交额 {v}元", False, "an amount"),
]
ID_CASES: list[tuple[str, object, bool, str]] = [
    ("身份证 {v}", fours, True, "18-digit ID grouped by fours"),
    ("身份证号码：{v}", lambda v: "-".join(v[i:i + 4] for i in range(0, 18, 4)), True, "grouped by fours with dashes"),
    ("证件号{v}", lambda v: v[:6] + " " + v[6:14] + " " + v[14:], True, "6-8-4 grouping"),
    ("订单已发货，身份证{v}已登记", str, True, "身份证 labels the number; 订单 is in another clause"),
    ("订单号：{v}", str, False, "an order number that passes the ID checksum is labelled an order number"),
]
OLD_ID_CASES: list[tuple[str, bool, str]] = [
    ("老身份证号{v}", True, "the first-generation 15-digit ID with an ID word"),
    ("一代身份证：{v}", True, "the first-generation 15-digit ID with an ID word"),
    ("编号{v}", False, "a 15-digit number without an ID word is not taken as an old ID"),
]
CARD_CASES: list[tuple[str, object, bool, str]] = [
    ("卡号{v}", lambda c: c[:6] + " " + c[6:], True, "a 19-digit card grouped 6-13"),
    ("银行卡 {v}", lambda c: c[:6] + "-" + c[6:], True, "6-13 with a dash"),
    ("储蓄卡{v}", fours, True, "grouped by fours"),
    ("订单号 {v}", str, False, "an order number that passes Luhn"),
]
#: Written after the recognizers were changed, to check the rules on wordings they were not tuned on:
#: (template, whether {v} is a phone, justification).
HELD_OUT_MOBILE: list[tuple[str, bool, str]] = [
    ("手机：{v}；订单号：20231001", True, "the order word comes after the number"),
    ("电话 {v} 金额 100元", True, "the amount word comes after the number"),
    ("您尾号5678的手机{v}已绑定", True, "手机 labels the number"),
    ("发货后短信通知{v}", True, "短信 labels the number"),
    ("寄件人：王五，{v}", True, "a bare number in a sender line"),
    ("下单手机号{v}", True, "手机号 labels the number; 下单 says what it was used for"),
    ("账单明细请发至{v}", True, "发至 points at the number"),
    ("价格：100元，电话{v}", True, "价格 ends its clause"),
    ("订单号 2023100100123，请联系{v}", True, "联系 labels the number; the order number is another value"),
    ("Tel: {v}", True, "an English label"),
    ("验证码：{v}", False, "验证码 labels the number"),
    ("金额：{v}.5元", False, "an amount with one decimal"),
    ("¥ {v}", False, "a currency sign with a space"),
    ("https://www.example.com/orders/{v}/detail", False, "a URL path"),
    ("文件名 export_{v}.xlsx", False, "a file name"),
    ("https://a.cn/p?id={v}&ref=abc", False, "a URL query value that is an id"),
    ("单号：SF{v}", False, "a waybill code with a carrier prefix"),
    ("物流单号：{v}", False, "a waybill number"),
    ("共计{v}人次", False, "a count"),
]
CSV_CASES: list[tuple[str, list[int], str]] = [
    ("收件人电话,关联订单号\n{a},{b}\n{c},{d}\n", [0, 2], "the header of the second column ends in 订单号"),
    ("订单号\t手机\n{a}\t{b}\n{c}\t{d}\n", [1, 3], "order column first, phone column second"),
    ("姓名,手机,物流单号\n张三,{a},{b}\n李四,{c},{d}\n", [0, 2], "phone column between a name and a waybill column"),
]


def _span(text: str, value: str, pi_type: str, after: int = 0) -> dict[str, object]:
    start = text.index(value, after)
    return {"type": pi_type, "start": start, "end": start + len(value)}


def build() -> list[dict[str, object]]:
    """All cases, deterministic."""
    out: list[dict[str, object]] = []

    def add(text: str, spans: list[dict[str, object]], why: str) -> None:
        out.append({"text": text, "spans": spans, "why": why, "group": "positive" if spans else "negative"})

    for template, why in POSITIVE_MOBILE:
        for m in MOBILES:
            text = template.replace("{v}", m)
            add(text, [_span(text, m, "mobile_phone")], why)
    for template, fmt, why in MOBILE_FORMATS:
        for m in MOBILES[:4]:
            value = fmt(m)  # type: ignore[operator]
            text = template.replace("{v}", value)
            add(text, [_span(text, value, "mobile_phone")], why)
    for template, why in NEGATIVE_MOBILE:
        for m in LOOKALIKE_11:
            add(template.replace("{v}", m), [], why)
    for template, positive, why in HELD_OUT_MOBILE:
        for m in MOBILES[:3]:
            text = template.replace("{v}", m)
            add(text, [_span(text, m, "mobile_phone")] if positive else [], why)
    for template, positive, why in LANDLINE_CASES:
        for v in LANDLINES:
            text = template.replace("{v}", v)
            add(text, [_span(text, v, "landline_phone")] if positive else [], why)
    for template, fmt, positive, why in ID_CASES:
        for v in IDS:
            value = fmt(v)  # type: ignore[operator]
            text = template.replace("{v}", value)
            add(text, [_span(text, value, "id_card")] if positive else [], why)
    for template, positive, why in OLD_ID_CASES:
        for v in OLD_IDS:
            text = template.replace("{v}", v)
            add(text, [_span(text, v, "id_card")] if positive else [], why)
    for template, fmt, positive, why in CARD_CASES:
        for c in CARDS_19:
            value = fmt(c)  # type: ignore[operator]
            text = template.replace("{v}", value)
            add(text, [_span(text, value, "bank_card")] if positive else [], why)
    for template, phone_cells, why in CSV_CASES:
        for i in range(len(MOBILES) - 1):
            values = [MOBILES[i], LOOKALIKE_11[i % 4], MOBILES[i + 1], LOOKALIKE_11[(i + 1) % 4]]
            if template.startswith("订单号"):
                values = [LOOKALIKE_11[i % 4], MOBILES[i], LOOKALIKE_11[(i + 1) % 4], MOBILES[i + 1]]
            text = template.format(a=values[0], b=values[1], c=values[2], d=values[3])
            spans: list[dict[str, object]] = []
            cursor = text.index("\n")
            for k, value in enumerate(values):
                start = text.index(value, cursor)
                cursor = start + len(value)
                if k in phone_cells:
                    spans.append({"type": "mobile_phone", "start": start, "end": start + len(value)})
            add(text, spans, why)
    return out


def main() -> None:
    cases = build()
    with HARDSET.open("w", encoding="utf-8") as f:
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    print(f"wrote {HARDSET}: {len(cases)} cases")


def read() -> list[dict[str, object]]:
    with HARDSET.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


if __name__ == "__main__":
    main()
