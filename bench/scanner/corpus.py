"""A seeded generator of Chinese sentences with checksum-valid PI values and hard negatives, with gold spans.

    python -m bench.scanner.corpus --docs 4000 --seed 7 --out bench/.cache/scanner_corpus.jsonl

Each line: ``{"text": ..., "spans": [{"type", "start", "end"}]}`` with character offsets. Values are embedded
in realistic sentences, with separators (spaces, dashes, +86), full-width digits (全角数字) on ~15% of
values, and hard negatives that must NOT be reported: order/waybill numbers (some passing Luhn), timestamps,
IDs with a wrong check character, cards and IMEIs failing Luhn, dates, amounts, version numbers, postcodes,
verification codes, meeting numbers and barcodes.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from yinsi.scan.checksums import PROVINCE_CODES, id_check_char, luhn_check_digit

FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
DIGITS_FULL = str.maketrans({d: chr(ord(d) + 0xFEE0) for d in "0123456789"})

MOBILE_SEGMENTS = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "147", "150", "151", "152", "153",
                   "155", "156", "157", "158", "159", "166", "170", "172", "173", "175", "176", "177", "178", "180",
                   "181", "182", "183", "185", "186", "187", "188", "189", "191", "193", "195", "198", "199"]
AREA_CODES = ["010", "020", "021", "022", "023", "024", "025", "027", "028", "029", "0311", "0371", "0431", "0451",
              "0512", "0531", "0571", "0574", "0591", "0731", "0755", "0757", "0769", "0871", "0898", "0931"]
CARD_BINS = ["622202", "622848", "621700", "622588", "436742", "518710", "621483", "622609", "625965", "955880",
             "622700", "603367", "621226", "356827", "456351", "628888"]
TACS = ["35209900", "35693803", "86769104", "35332011", "86012345", "01326300", "35875206", "86893203"]
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "gmail.com", "foxmail.com", "example.com.cn",
                 "yinsi-demo.cn", "outlook.com", "company.com"]
PINYIN = ["zhang", "wang", "li", "zhao", "chen", "liu", "yang", "huang", "zhou", "wu", "xu", "sun", "ma", "zhu",
          "hu", "guo", "he", "lin", "luo", "gao", "wei", "ming", "hua", "jun", "fang", "xiao", "lei", "ting"]
PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"

TEMPLATES: dict[str, list[str]] = {
    "mobile_phone": ["我的手机号是{v}，有事随时打给我。", "请拨打{v}联系客服。", "收货人电话：{v}，请在工作日送达。",
                     "如有疑问可致电 {v} 咨询。", "新号码{v}已经启用，旧号停用了。", "联系方式 {v}（微信同号）",
                     "短信已发送至{v}，请注意查收。", "紧急联系人手机{v}"],
    "landline_phone": ["公司座机：{v}，工作日9点到18点。", "请拨打办公电话{v}转人事部。", "固话 {v} 已登记。",
                       "传真号码{v}，请注明收件人。", "门店电话{v}"],
    "id_card": ["身份证号码：{v}，请核对。", "实名认证时填写的证件号为{v}。", "乘客身份证{v}已登记入住。",
                "本人公民身份号码 {v}，特此声明。", "请上传证件（号码{v}）正反面照片。"],
    "bank_card": ["退款将原路退回尾号卡，银行卡号{v}。", "请确认收款卡号：{v}（工商银行）。", "绑定的储蓄卡 {v} 已解绑。",
                  "信用卡{v}本期账单已出。", "工资打到这张卡上：{v}"],
    "email": ["简历请发送至{v}，邮件标题注明岗位。", "我的邮箱是 {v} ，有问题发邮件。", "发票将发送到{v}。",
              "联系邮箱：{v}", "账号绑定邮箱{v}已验证"],
    "ip_address": ["登录IP：{v}，如非本人操作请修改密码。", "服务器地址 {v} 无法访问。", "异常访问来自{v}。",
                   "本次登录的IP地址为{v}", "请把{v}加入白名单。"],
    "imei": ["手机IMEI：{v}，请妥善保管。", "设备串号{v}已绑定账号。", "IMEI号 {v} 的手机已挂失。",
             "上报的设备识别码为{v}。"],
    "mac_address": ["网卡MAC地址：{v}", "路由器里看到的设备物理地址是{v}。", "MAC {v} 已加入黑名单。",
                    "设备{v}连接了门店Wi-Fi。"],
    "passport": ["护照号码：{v}，有效期至2030年。", "请填写护照号{v}办理签证。", "出境时使用的护照 {v} 已过期。"],
    "license_plate": ["车牌号{v}的车主请挪车。", "停车场记录：{v}于8点入场。", "我的车是{v}，白色轿车。",
                      "违章车辆 {v} 请及时处理。", "新能源车{v}可以免费停两小时。"],
    "qq": ["我的QQ：{v}，加我备注来意。", "有事联系QQ号{v}。", "客服QQ {v} 在线时间为白天。", "扣扣{v}"],
    "wechat_id": ["我的微信号是{v}，加好友请备注。", "加微信：{v}", "vx：{v} 随时联系", "微信 {v} 已添加。"],
}

NEGATIVE_TEMPLATES = [
    "订单号：{order}，请在24小时内付款。", "您的订单编号{order}已发货。", "快递单号 {waybill} 正在派送。",
    "交易流水号{order}，金额{amount}元。", "时间戳{ts10}对应北京时间。", "毫秒时间戳：{ts13}", "记录时间 {datetime}",
    "创建于{compact_dt}。", "验证码{code6}，5分钟内有效。", "邮编{code6}。", "会议号 {meeting}，密码 {code4}。",
    "商品条码{ean}。", "当前版本 {version}，请升级。", "第{period}期中奖号码公布。", "合同编号HT-{year}-{code4}",
    "工号{code8}已离职。", "金额合计 {amount} 元，含税。", "发票号码{code8}，发票代码{invoice}。",
    "身份证号码：{bad_id}（校验位错误，请重新填写）", "卡号{bad_card}无效，请核对后重试。", "IMEI {bad_imei} 校验失败。",
    "运单号{order}已签收。", "序列号{serial}", "批次号{order}的货物已入库。",
]


@dataclass
class Doc:
    text: str = ""
    spans: list[dict[str, object]] = field(default_factory=list)

    def _separate(self) -> None:
        if self.text and self.text[-1] not in "。，！？；）":
            self.text += "。"

    def add(self, piece: str) -> None:
        self._separate()
        self.text += piece

    def add_value(self, pi_type: str, template: str, value: str) -> None:
        self._separate()
        before, after = template.split("{v}")
        self.text += before
        self.spans.append({"type": pi_type, "start": len(self.text), "end": len(self.text) + len(value)})
        self.text += value + after


class Generator:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def maybe_full_width(self, value: str, p: float = 0.15) -> str:
        return value.translate(DIGITS_FULL if self.r.random() < 0.5 else FULL_WIDTH) if self.r.random() < p else value

    # --- values ------------------------------------------------------------------------------------------
    def mobile(self) -> str:
        n = self.r.choice(MOBILE_SEGMENTS) + self.digits(8)
        style = self.r.randrange(7)
        if style == 1:
            n = f"{n[:3]} {n[3:7]} {n[7:]}"
        elif style == 2:
            n = f"{n[:3]}-{n[3:7]}-{n[7:]}"
        elif style == 3:
            n = "+86 " + n
        elif style == 4:
            n = f"+86-{n[:3]}-{n[3:7]}-{n[7:]}"
        elif style == 5:
            n = "0086" + n
        return self.maybe_full_width(n)

    def landline(self) -> str:
        area = self.r.choice(AREA_CODES)
        sub = self.r.choice("2345678") + self.digits(7 if len(area) == 3 or self.r.random() < 0.6 else 6)
        style = self.r.randrange(3)
        n = f"{area}-{sub}" if style == 0 else (f"({area}){sub}" if style == 1 else area + sub)
        n = self.maybe_full_width(n)
        return n.replace("(", "（").replace(")", "）") if style == 1 and self.r.random() < 0.5 else n

    def id_number(self, valid: bool = True) -> str:
        province = self.r.choice(sorted(set(PROVINCE_CODES) - {"71", "81", "82", "83"}))
        region = province + f"{self.r.randint(1, 20):02d}{self.r.randint(1, 30):02d}"
        year = self.r.randint(1940, 2015)
        month = self.r.randint(1, 12)
        day = self.r.randint(1, 28)
        body = f"{region}{year}{month:02d}{day:02d}{self.digits(3)}"
        check = id_check_char(body)
        if not valid:
            check = self.r.choice([c for c in "0123456789X" if c != check])
        value = body + check
        if value.endswith("X") and self.r.random() < 0.2:
            value = value[:-1] + "x"
        return self.maybe_full_width(value) if valid else value

    def card(self, valid: bool = True) -> str:
        length = self.r.choice([16, 16, 19, 19, 17, 18])
        payload = self.r.choice(CARD_BINS) + self.digits(length - 7)
        check = luhn_check_digit(payload)
        if not valid:
            check = str((int(check) + self.r.randint(1, 9)) % 10)
        n = payload + check
        if self.r.random() < 0.4:
            n = " ".join(n[i:i + 4] for i in range(0, len(n), 4))
        return self.maybe_full_width(n) if valid else n

    def email(self) -> str:
        local = self.r.choice(PINYIN) + self.r.choice(["", ".", "_"]) + self.r.choice(PINYIN)
        if self.r.random() < 0.5:
            local += self.digits(self.r.randint(1, 4))
        return f"{local}@{self.r.choice(EMAIL_DOMAINS)}"

    def ip(self) -> str:
        if self.r.random() < 0.25:
            groups = [f"{self.r.randrange(65536):x}" for _ in range(8)]
            groups[0] = self.r.choice(["2001", "240e", "2408", "fe80"])
            if self.r.random() < 0.5:
                return ":".join(groups[:3]) + "::" + ":".join(groups[6:])
            return ":".join(groups)
        return ".".join(str(x) for x in (self.r.randint(1, 223), self.r.randrange(256), self.r.randrange(256),
                                         self.r.randint(1, 254)))

    def imei(self, valid: bool = True) -> str:
        payload = self.r.choice(TACS) + self.digits(6)
        check = luhn_check_digit(payload)
        if not valid:
            check = str((int(check) + self.r.randint(1, 9)) % 10)
        n = payload + check
        if valid and self.r.random() < 0.2:
            n = f"{n[:2]}-{n[2:8]}-{n[8:14]}-{n[14]}"
        return self.maybe_full_width(n) if valid else n

    def mac(self) -> str:
        octets = [f"{self.r.randrange(256):02X}" for _ in range(6)]
        if not any(ch in "ABCDEF" for o in octets for ch in o):
            octets[0] = "A4"
        mac = self.r.choice([":", "-"]).join(octets)
        return mac.lower() if self.r.random() < 0.3 else mac

    def passport(self) -> str:
        if self.r.random() < 0.5:
            return "E" + self.digits(8)
        return "E" + self.r.choice(PLATE_LETTERS) + self.digits(7)

    def plate(self) -> str:
        head = self.r.choice(PLATE_PROVINCES) + self.r.choice(PLATE_LETTERS)
        if self.r.random() < 0.3:  # new-energy
            tail = (self.r.choice("DF") + self.r.choice(PLATE_LETTERS + string.digits) + self.digits(4)
                    if self.r.random() < 0.7 else self.digits(5) + self.r.choice("DF"))
        else:
            chars = [*self.digits(5)]
            for i in self.r.sample(range(5), self.r.randint(0, 2)):
                chars[i] = self.r.choice(PLATE_LETTERS)
            tail = "".join(chars)
        return head + ("·" if self.r.random() < 0.1 else "") + tail

    def qq(self) -> str:
        return str(self.r.randint(1, 9)) + self.digits(self.r.randint(4, 9))

    def wechat(self) -> str:
        return self.r.choice(string.ascii_lowercase) + "".join(
            self.r.choice(string.ascii_lowercase + string.digits + "_-") for _ in range(self.r.randint(5, 14)))

    # --- negatives ---------------------------------------------------------------------------------------
    def order(self) -> str:
        n = self.r.choice(["62", "1", "2023", "35", "86", "4"]) + self.digits(self.r.randint(12, 18))
        if self.r.random() < 0.5 and len(n) >= 15:  # a look-alike that passes Luhn: only the context tells
            n = n[:-1] + luhn_check_digit(n[:-1])
        return n

    def negative(self) -> str:
        fill: dict[str, Callable[[], str]] = {
            "order": self.order,
            "waybill": lambda: self.r.choice(["SF", "YT", "JD", "ZTO"]) + self.digits(13),
            "amount": lambda: f"{self.r.randint(1, 99999):,}.{self.digits(2)}",
            "ts10": lambda: str(self.r.randint(1_500_000_000, 1_800_000_000)),
            "ts13": lambda: str(self.r.randint(1_500_000_000_000, 1_800_000_000_000)),
            "datetime": lambda: f"20{self.r.randint(10, 30)}-{self.r.randint(1, 12):02d}-{self.r.randint(1, 28):02d} "
                                f"{self.r.randrange(24):02d}:{self.r.randrange(60):02d}:{self.r.randrange(60):02d}",
            "compact_dt": lambda: f"20{self.r.randint(10, 30)}{self.r.randint(1, 12):02d}{self.r.randint(1, 28):02d}"
                                  f"{self.r.randrange(24):02d}{self.r.randrange(60):02d}{self.r.randrange(60):02d}",
            "code6": lambda: self.digits(6),
            "code4": lambda: self.digits(4),
            "code8": lambda: self.digits(8),
            "meeting": lambda: f"{self.digits(3)} {self.digits(3)} {self.digits(3)}",
            "ean": lambda: "69" + self.digits(11),
            "version": lambda: ".".join(str(self.r.randint(0, 20)) for _ in range(self.r.choice([3, 4]))),
            "period": lambda: "20" + self.digits(5),
            "year": lambda: str(self.r.randint(2015, 2030)),
            "invoice": lambda: self.digits(12),
            "bad_id": lambda: self.id_number(valid=False),
            "bad_card": lambda: self.card(valid=False),
            "bad_imei": lambda: self.imei(valid=False),
            "serial": lambda: "".join(self.r.choice(string.ascii_uppercase + string.digits) for _ in range(12)),
        }
        template = self.r.choice(NEGATIVE_TEMPLATES)
        return template.format(**{k: fn() for k, fn in fill.items() if "{" + k + "}" in template})

    def value(self, pi_type: str) -> str:
        return {
            "mobile_phone": self.mobile, "landline_phone": self.landline, "id_card": self.id_number,
            "bank_card": self.card, "email": self.email, "ip_address": self.ip, "imei": self.imei,
            "mac_address": self.mac, "passport": self.passport, "license_plate": self.plate, "qq": self.qq,
            "wechat_id": self.wechat,
        }[pi_type]()

    def doc(self) -> Doc:
        doc = Doc()
        for _ in range(self.r.randint(2, 5)):
            if self.r.random() < 0.6:
                pi_type = self.r.choice(list(TEMPLATES))
                doc.add_value(pi_type, self.r.choice(TEMPLATES[pi_type]), self.value(pi_type))
            else:
                doc.add(self.negative())
        return doc


def generate(docs: int, seed: int) -> list[Doc]:
    gen = Generator(seed)
    return [gen.doc() for _ in range(docs)]


def write(path: Path, corpus: list[Doc]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for d in corpus:
            f.write(json.dumps({"text": d.text, "spans": d.spans}, ensure_ascii=False) + "\n")


def read(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as f:
        return [Doc(row["text"], row["spans"]) for row in map(json.loads, f) if row]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate the scanner benchmark corpus.")
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/.cache/scanner_corpus.jsonl"))
    args = parser.parse_args(argv)
    corpus = generate(args.docs, args.seed)
    write(args.out, corpus)
    chars = sum(len(d.text) for d in corpus)
    size = sum(len(d.text.encode()) for d in corpus)
    print(f"wrote {args.out}: {len(corpus)} documents, {sum(len(d.spans) for d in corpus)} PI values, "
          f"{chars} characters, {size / 1e6:.2f} MB UTF-8")


if __name__ == "__main__":
    main()
