"""A declaration draft read from a policy text: every element quotes the sentence it comes from.

What the text does not say stays null with a silent source and a note; the draft is meant for a person to
finish, so choices the text does not make (basic or extended function, legal basis) are marked in notes.
Phrases that look like PI but map to no taxonomy item are returned separately for a person to map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from yinsi.analyze import structure as st
from yinsi.analyze.findings import _reply_deadlines
from yinsi.analyze.text import PolicyText
from yinsi.domain.taxonomy import taxonomy

# Phrases a policy uses for taxonomy items, beyond the items' own names (Simplified).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "contact.mobile": ("手机号码", "手机号", "电话号码", "联系电话", "手机号码信息"),
    "identity.id_card_number": ("身份证号码", "身份证号"),
    "identity.id_document": ("身份证件", "证件号码", "证件类型", "身份证明", "身份证"),
    "biometric.face": ("人脸", "面部", "面容"),
    "biometric.fingerprint": ("指纹",),
    "property.bank_card": ("银行卡号", "银行卡信息", "银行卡", "银行账户"),
    "account.password": ("密码",),
    "account.sms_code": ("验证码",),
    "account.username": ("用户名",),
    "account.id": ("账号", "账户名", "用户ID"),
    "account.third_party_login": ("第三方账号", "授权登录", "关联账号"),
    "account.wechat_id": ("微信账号", "企业微信"),
    "basic.nickname": ("昵称",),
    "basic.avatar": ("头像",),
    "basic.gender": ("性别",),
    "basic.birth_date": ("生日", "出生日期"),
    "basic.home_address": ("住址", "家庭地址"),
    "basic.name": ("姓名", "真实姓名"),
    "contact.email": ("电子邮箱", "邮箱地址", "电子邮件地址"),
    "contact.postal_address": ("收货地址", "通讯地址", "联系地址", "地址信息"),
    "contact.consignee_name": ("收货人姓名",),
    "location.precise": ("精确位置", "精准定位", "GPS", "地理位置", "位置信息", "定位信息"),
    "location.coarse": ("所在城市", "粗略位置"),
    "online.ip_address": ("IP地址", "IP 地址", "IP信息"),
    "online.browse_history": ("浏览记录", "浏览信息", "浏览历史"),
    "online.search_keywords": ("搜索关键词", "搜索关键字", "关键词"),
    "online.search_history": ("搜索记录", "搜索历史"),
    "online.click_records": ("点击记录",),
    "online.access_log": ("访问日志", "网络日志", "日志信息", "访问时间", "停留时长", "浏览时长"),
    "online.cookie_data": ("Cookie",),
    "device.model": ("设备型号", "手机型号"),
    "device.os": ("操作系统",),
    "device.identifiers": ("IMEI", "IMSI", "Android ID", "IDFA", "OAID", "设备标识", "设备识别码", "唯一设备识别码"),
    "device.mac_address": ("MAC地址", "MAC 地址"),
    "device.installed_apps": ("软件列表", "应用列表", "安装列表"),
    "device.network_info": ("网络类型", "运营商", "Wi-Fi", "WiFi", "网络信息"),
    "device.crash_log": ("崩溃日志", "崩溃信息"),
    "device.info": ("设备信息",),
    "device.photos": ("相册中的", "图片库"),
    "device.clipboard": ("剪切板", "剪贴板"),
    "transaction.order": ("订单信息", "订单"),
    "transaction.order_number": ("订单号",),
    "transaction.amount": ("交易金额", "支付金额"),
    "property.transaction_record": ("交易记录", "消费记录"),
    "property.payment_account": ("支付账号", "支付宝账号"),
    "contacts.address_book": ("通讯录",),
    "comms.chat_content": ("聊天记录", "聊天内容", "聊天信息"),
    "comms.call_log": ("通话记录",),
    "comms.sms_content": ("短信内容",),
    "content.posts": ("发布的内容", "发布的信息", "上传的内容"),
    "content.photos": ("照片", "图片"),
    "content.video": ("视频",),
    "content.audio": ("语音", "录音"),
    "content.reviews": ("评价", "点评"),
    "content.feedback": ("反馈", "意见建议"),
    "content.listing": ("房源信息", "商品信息", "楼盘信息"),
    "work.employer": ("工作单位", "公司名称"),
    "work.position": ("职位", "职务"),
    "work.education": ("学历", "教育经历"),
    "health.record": ("健康", "病历", "体检"),
    "property.real_estate": ("房产",),
    "property.income": ("收入",),
}

PERMISSION_WORDS: dict[str, tuple[str, ...]] = {
    "camera": ("相机权限", "摄像头权限", "相机(", "相机（", "摄像头"),
    "microphone": ("麦克风",),
    "location": ("位置权限", "定位权限", "位置信息权限", "地理位置权限", "位置信息(", "地理位置("),
    "contacts": ("通讯录权限", "通讯录"),
    "calendar": ("日历权限", "日历"),
    "phone_state": ("电话状态", "设备信息权限", "电话权限"),
    "call_phone": ("拨打电话",),
    "call_log": ("通话记录权限",),
    "sms": ("短信权限",),
    "storage": ("存储权限", "外部存储", "存储空间"),
    "photos": ("相册权限", "相册", "图片库"),
    "bluetooth": ("蓝牙",),
    "notifications": ("通知权限", "推送通知权限", "推送权限"),
    "clipboard": ("剪切板", "剪贴板"),
    "system_alert_window": ("悬浮窗",),
    "network_state": ("网络状态",),
}

COLLECT = re.compile(r"收集|获取|提供|需要您|采集|记录|读取|上传|填写")
PERMISSION_USE = re.compile(r"申请|开启|授权|调用|访问|获取|使用|关闭")


@dataclass
class Draft:
    declaration: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)


def _clean(q: str) -> str:
    return re.sub(r"[\r\n]+|\*\*", "", q).strip()


class _Reader:
    def __init__(self, pt: PolicyText) -> None:
        self.pt = pt
        self.sentences: list[tuple[int, int]] = []
        v = pt.view
        b = 0
        for m in re.finditer(r"[。；！？;!?]", v):
            self.sentences.append((b, m.end()))
            b = m.end()
        if b < len(v):
            self.sentences.append((b, len(v)))

    def quote(self, vstart: int, vend: int, limit: int = 160) -> str:
        s, e = self.pt.span(vstart, vend)
        q = _clean(self.pt.text[s:e])
        if len(q) > limit:
            s2, e2 = self.pt.span(vstart, min(vend, vstart + limit))
            q = _clean(self.pt.text[s2:e2])
        if self.pt.is_html:
            q = re.sub(r"<[^>]*>", "", q)
        return q or "（空）"

    def sentence(self, vpos: int) -> tuple[int, int]:
        for b, e in self.sentences:
            if b <= vpos < e:
                return b, e
        return vpos, min(len(self.pt.view), vpos + 80)

    def find(self, pattern: str) -> tuple[re.Match[str], str] | None:
        m = re.search(pattern, self.pt.view)
        if not m:
            return None
        b, e = self.sentence(m.start())
        return m, self.quote(b, e)

    def src(self, pattern: str, note: str | None = None) -> dict[str, Any]:
        hit = self.find(pattern)
        if hit is None:
            return silent(note or "文本未说明")
        return {"quote": hit[1]}


def silent(note: str) -> dict[str, Any]:
    return {"silent": True, "note": note}


def _stated(r: _Reader, pattern: str, group: str | int, note: str) -> dict[str, Any]:
    m = re.search(pattern, r.pt.view)
    if not m:
        return {"value": None, "source": silent(note)}
    return {"value": m.group(group), "source": {"quote": r.quote(m.start(), m.end())}}


def _date(r: _Reader, label: str) -> dict[str, Any]:
    m = re.search("(?:" + label + r")[^0-9年]{0,12}(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日", r.pt.view)
    if not m:
        blank = re.search("(?:" + label + r")[^。\n]{0,12}\d{4}\s*年\s*月\s*日", r.pt.view)
        if blank:
            return {"value": None, "source": {"quote": r.quote(blank.start(), blank.end()), "note": "日期留空"}}
        return {"value": None, "source": silent(f"文本未给出{label}")}
    try:
        value = date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return {"value": None, "source": {"quote": r.quote(m.start(), m.end()), "note": "日期无效"}}
    return {"value": value, "source": {"quote": r.quote(m.start(), m.end())}}


def _item_names() -> list[tuple[str, str]]:
    tax = taxonomy()
    pairs: list[tuple[str, str]] = []
    for item_id, item in tax.items.items():
        for name in re.split(r"[/（）()、，,]", item.name):
            if len(name) >= 2:
                pairs.append((name, item_id))
    for item_id, words in SYNONYMS.items():
        if item_id in tax.items:
            pairs.extend((w, item_id) for w in words)
    return sorted(set(pairs), key=lambda p: -len(p[0]))


def map_items(text: str) -> list[tuple[str, str, int]]:
    """(phrase, item id, view offset) for every taxonomy phrase in ``text``, longest first, no overlaps."""
    taken = [False] * len(text)
    out: list[tuple[str, str, int]] = []
    for name, item_id in _item_names():
        for m in re.finditer(re.escape(name), text):
            if any(taken[m.start():m.end()]):
                continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            out.append((name, item_id, m.start()))
    return sorted(out, key=lambda t: t[2])


def _slug(s: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")
    return s if re.match(r"^[a-z0-9]", s or "") else "draft"


def _features(r: _Reader, unmapped: dict[str, None]) -> list[dict[str, Any]]:
    pt = r.pt
    hs = [h for h in st.headings(pt) if h.level in (2, 3)]
    features: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for b, e in r.sentences:
        sent = pt.view[b:e]
        if "我们" not in sent and "您" not in sent and "你" not in sent:
            continue
        items = map_items(sent) if COLLECT.search(sent) else []
        perms = ([(pid, w) for pid, words in PERMISSION_WORDS.items() for w in words if w in sent]
                 if "权限" in sent and PERMISSION_USE.search(sent) else [])
        if not items and not perms:
            continue
        start, _end = pt.span(b, e)
        heading = None
        for h in hs:
            if h.start <= start:
                heading = h
        name = (heading.title[:30] if heading else "") or "未归入章节的收集"
        name = re.sub(r"[*#：:]+$", "", name).strip() or "未归入章节的收集"
        if name not in features:
            fid = f"feature_{len(features) + 1}"
            kind_hit = re.search(r"基本(?:业务)?功能|扩展(?:业务)?功能|附加(?:功能|服务)", sent)
            feature: dict[str, Any] = {
                "id": fid, "name": name,
                "kind": "basic" if kind_hit and kind_hit.group(0).startswith("基本") else "extended",
                "kind_source": ({"quote": r.quote(b, e)} if kind_hit
                                else silent("文本未说明是基本还是扩展业务功能，草稿暂作扩展功能，须人工确认")),
                "purposes": [],
                "collections": [],
                "legal_basis": "consent",
                "legal_basis_source": silent("文本未写明合法性基础，草稿暂作取得同意，须人工确认"),
                "permissions": [],
                "source": {"quote": r.quote(b, e)},
            }
            basis = re.search(r"(?:订立|履行)[^。]{0,10}合同所必需|法定义务|法律法规[^。]{0,10}(?:要求|规定)", sent)
            if basis:
                feature["legal_basis"] = "contract" if "合同" in basis.group(0) else "statutory_duty"
                feature["legal_basis_source"] = {"quote": r.quote(b, e)}
            features[name] = feature
            order.append(name)
        f = features[name]
        purpose = re.search(r"(?:用于|以便|为了|目的是|以)([^，。；]{2,40})", sent)
        if purpose and len(f["purposes"]) < 5 and purpose.group(1) not in f["purposes"]:
            f["purposes"].append(_clean(purpose.group(1)))
        have = {c["item"] for c in f["collections"]}
        for _phrase, item_id, pos in items:
            if item_id in have:
                continue
            have.add(item_id)
            f["collections"].append({"item": item_id, "required": not re.search(r"可选|选择|自愿|如您需要", sent),
                                     "source": {"quote": r.quote(b, e) if e - b <= 160
                                                else r.quote(max(b, b + pos - 40), min(e, b + pos + 60))}})
        have_p = {p["permission"] for p in f["permissions"]}
        for pid, _w in perms:
            if pid not in have_p:
                have_p.add(pid)
                f["permissions"].append({"permission": pid, "source": {"quote": r.quote(b, e)}})
        for m in re.finditer(r"(?:包括|例如|如|即)[：:]?([^。；]{4,120})", sent):
            for part in re.split(r"[、，,及和与或以及]+", m.group(1)):
                part = part.strip("（）()“”\"' 等信息")
                if (2 <= len(part) <= 12 and not map_items(part) and re.search(r"(?:信息|号|码|记录|地址|名称|时间|数据)$", part)
                        and not re.search(r"[\d一二三四五六七八九十“”\"]|您|你|我们|其", part)):
                    unmapped.setdefault(part, None)
    out = []
    for name in order:
        f = features[name]
        if not f["purposes"]:
            f["purposes"] = ["（文本未写明目的）"]
        if not f["collections"]:
            f["collects_nothing"] = False
        out.append(f)
    return out


def _recipients(r: _Reader) -> list[dict[str, Any]]:
    kinds = [
        ("affiliates", "关联公司", "affiliate", r"关联公司|关联方"),
        ("partners", "授权合作伙伴", "partner", r"合作伙伴|合作方"),
        ("payment_institutions", "支付机构", "payment_institution", r"支付机构|第三方支付"),
        ("entrusted_processors", "受托处理者", "entrusted_processor", r"委托[^。]{0,10}处理|服务提供商|供应商"),
        ("authorities", "国家机关", "authority", r"司法机关|行政机关|政府部门|监管部门|有权机关"),
        ("counterparties", "交易对方", "counterparty", r"交易对方|商家|卖家"),
        ("transferees", "受让方", "transferee", r"受让|合并、收购|收购、"),
        ("sdk_providers", "第三方SDK提供方", "sdk_provider", r"SDK"),
    ]
    out = []
    for rid, name, kind, pat in kinds:
        m = re.search(r"(?:共享|提供给|提供|转让|披露|委托|接入)[^。]{0,40}(?:" + pat + ")|(?:" + pat + r")[^。]{0,40}(?:共享|提供|转让|披露|处理)",  # noqa: E501
                      r.pt.view)
        if not m:
            continue
        b, e = r.sentence(m.start())
        sent = r.pt.view[b:e]
        rec: dict[str, Any] = {"id": rid, "name": name, "kind": kind, "source": {"quote": r.quote(b, e)}}
        if kind == "authority":
            rec["action"] = "disclose"
            rec["legal_basis"] = "statutory_duty"
        elif kind == "transferee":
            rec["action"] = "transfer"
        elif kind == "entrusted_processor":
            rec["action"] = "entrust"
        items = [i for _p, i, _pos in map_items(sent)]
        if items:
            rec["items"] = sorted(set(items))
        rec["separate_consent"] = True if "单独同意" in sent else None
        out.append(rec)
    return out


def _sdks(r: _Reader) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in re.finditer(r"([A-Za-z][A-Za-z0-9]{1,20}|[\u4e00-\u9fff]{2,8})\s?SDK", r.pt.view):
        name = m.group(0).strip()
        if any(w in name for w in ("第三方", "关联公司", "内嵌", "接入", "开发工具", "以下", "上述", "合作方", "我们", "使用", "相关")) or name in seen:  # noqa: E501
            continue
        seen.add(name)
        b, e = r.sentence(m.start())
        out.append({"id": f"sdk_{len(out) + 1}", "name": name, "provider": None, "policy_url": None,
                    "source": {"quote": r.quote(b, e)}})
    return out


def _retention(r: _Reader) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for m in re.finditer(r"(?:保存|存储|保留)[^。]{0,30}?(?:不超过|不少于|为期|为|期限为)?\s*(\d{1,4}|[一二三四五六七八九十]{1,3})\s*(?:个)?(天|日|个月|月|年)", r.pt.view):  # noqa: E501
        n = st.cn_number(m.group(1)) or 0
        unit = m.group(2)
        days = n * (365 if unit == "年" else 30 if "月" in unit else 1)
        if not days:
            continue
        b, e = r.sentence(m.start())
        sent = r.pt.view[b:e]
        items = sorted({i for _p, i, _pos in map_items(sent)}) or ["*"]
        rule: dict[str, Any] = {"items": items, "source": {"quote": r.quote(b, e)}}
        if "不少于" in sent or ("法律" in sent and "至少" in sent):
            rule["legal_hold"] = {"basis": "文本所述法定或监管要求", "min_days": days, "source": {"quote": r.quote(b, e)}}
        else:
            rule["period_days"] = days
        rule["action"] = ("delete_or_anonymise" if "删除" in sent and "匿名" in sent else "delete" if "删除" in sent
                          else "anonymise" if "匿名" in sent else "unstated")
        rules.append(rule)
    if not rules:
        hit = r.find(r"(?:保存|存储)[^。]{0,20}(?:期限|期间|时间)[^。]{0,40}(?:必需|必要|最短)")
        if hit:
            b, e = r.sentence(hit[0].start())
            sent = r.pt.view[b:e]
            rules.append({"items": ["*"], "determination": _clean(sent)[:80], "generic": True,
                          "action": "delete_or_anonymise" if "匿名" in sent else "unstated",
                          "source": {"quote": hit[1]}})
    return rules


_RIGHT_PATTERNS = [
    ("access", r"查阅|查询|访问"), ("copy", r"复制|副本"), ("portability", r"转移至|转移到|迁移|可携"),
    ("correction", r"更正"), ("supplement", r"补充"), ("deletion", r"删除"),
    ("restriction", r"限制[^。]{0,8}处理"), ("withdraw_consent", r"撤回"), ("cancel_account", r"注销"),
    ("explanation", r"解释说明"), ("refuse_automated_decision", r"自动化决策"),
    ("deceased_relatives", r"近亲属"), ("complaint", r"投诉|举报"),
]


def _rights(r: _Reader) -> list[dict[str, Any]]:
    out = []
    rights_start = 0
    m = re.search(r"(?:您|你)(?:的|管理|如何管理)[^。]{0,10}(?:权利|个人信息)", r.pt.view)
    if m:
        rights_start = m.start()
    for kind, pat in _RIGHT_PATTERNS:
        hit = re.search(pat, r.pt.view[rights_start:]) or re.search(pat, r.pt.view)
        if not hit:
            continue
        pos = hit.start() + (rights_start if re.search(pat, r.pt.view[rights_start:]) else 0)
        b, e = r.sentence(pos)
        out.append({"right": kind, "source": {"quote": r.quote(b, e)}})
    return out


def _channels(r: _Reader) -> list[dict[str, Any]]:
    out = []
    seen: set[str] = set()
    for m in re.finditer(r"(?<!\d)(?:400|800)[- ]?\d{3}[- ]?\d{4}(?!\d)|(?<!\d)0\d{2,3}-\d{7,8}(?!\d)", r.pt.view):
        key = re.sub(r"\D", "", m.group(0))
        if key not in seen:
            seen.add(key)
            out.append({"kind": "phone", "value": m.group(0), "source": {"quote": r.quote(*r.sentence(m.start()))}})
    for m in re.finditer(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", r.pt.view):
        if m.group(0) not in seen:
            seen.add(m.group(0))
            out.append({"kind": "email", "value": m.group(0), "source": {"quote": r.quote(*r.sentence(m.start()))}})
    return out


_MEASURES = [
    ("encryption", r"加密"), ("deidentification", r"去标识化"), ("access_control", r"访问控制|权限控制|访问权限"),
    ("audit", r"审计"), ("authentication", r"身份验证|身份认证|多因素"), ("backup", r"备份"),
    ("training", r"培训"), ("incident_plan", r"应急预案|应急响应"), ("masking", r"脱敏|屏蔽"),
]


def draft_declaration(text: str, file: str = "policy.txt", tenant: str | None = None) -> Draft:
    """A declaration draft (a dict ready for YAML) and the phrases left for a person to map."""
    pt = PolicyText.of(text, file)
    r = _Reader(pt)
    unmapped: dict[str, None] = {}
    name = Path(file).stem
    title = re.search(r"《([^》]{1,30}?)(?:隐私政策|隐私权政策|隐私保护指引|个人信息保护政策)》", pt.view)
    app_name = title.group(1) if title else name
    company = _company(pt.view)
    controller: dict[str, Any] = {
        "legal_name": ({"value": r.quote(company.start(), company.end()), "source": {"quote": r.quote(company.start(), company.end())}}  # noqa: E501
                       if company else {"value": None, "source": silent("文本未写明运营者名称")}),
        "registered_address": _addr(r, r"注册地址"),
        "office_address": _addr(r, r"办公地址|办公地点|公司地址|联系地址"),
        "contacts": _channels(r),
        "source": r.src(r"有限(?:责任)?公司|股份公司", "文本未写明运营者"),
    }
    officer = r.find(r"个人信息保护(?:负责人|专职部门|部门|专员)")
    if officer:
        controller["protection_officer"] = {"department": officer[0].group(0), "source": {"quote": officer[1]}}
    response: dict[str, Any] = {"days": None, "source": silent("文本未承诺答复期限")}
    deadlines = _reply_deadlines(pt)
    if deadlines:
        m, n, unit = deadlines[0]
        days = n * 30 if "月" in unit else n
        b, e = r.sentence(m.start())
        response = {"days": days, "unit": "working" if unit == "工作日" else "natural",
                    "holidays_extended": "顺延" in pt.view[b:e], "source": {"quote": r.quote(b, e)}}
    view = pt.view
    cross = "unstated"
    cross_src = silent("文本未说明是否向境外提供个人信息")
    hit = r.find(r"跨境|境外|出境")
    if hit:
        cross_src = {"quote": hit[1]}
        cross = ("possible_with_consent" if re.search(r"单独[^。]{0,10}同意|授权同意", hit[1] if pt.traditional_chars == 0 else view)  # noqa: E501
                 else "none" if re.search(r"不会|不涉及|不存在", hit[1]) else "unstated")
    storage = {"location": "中华人民共和国境内" if "境内" in view else None, "cross_border": cross, "source": cross_src}
    guardian = 18 if re.search(r"未成年人[^。]{0,30}监护人", view) else None
    if re.search(r"(?:不满|未满)(?:十四|14)周岁[^。]{0,40}监护人", view):
        guardian = 14 if guardian is None else guardian
    minors = {"adult_age": 18 if re.search(r"18周岁|十八周岁", view) else None, "guardian_consent_under": guardian,
              "source": r.src(r"未成年|儿童", "文本未说明未成年人")}
    ch_words = [("email", r"邮件"), ("letter", r"信函"), ("phone", r"电话"), ("push", r"推送"), ("sms", r"短信")]
    inc = r.find(r"安全事件[^。]{0,60}(?:告知|通知)")
    incident = {"channels": [], "announcement": False, "source": silent("文本未说明安全事件的告知")}
    if inc:
        b, e = r.sentence(inc[0].start())
        seg = view[b:min(len(view), e + 200)]
        incident = {"channels": [k for k, p in ch_words if re.search(p, seg)], "announcement": "公告" in seg,
                    "source": {"quote": inc[1]}}
    changes = {"continued_use_is_acceptance": bool(re.search(r"继续(?:使用|访问)[^。]{0,40}(?:视为|表示|代表|即)[^。]{0,20}(?:同意|接受)", view)),  # noqa: E501
               "archive_old_versions": True if re.search(r"(?:旧版|历史版本|过往版本|存档)", view) else None,
               "source": r.src(r"(?:政策|本政策)[^。]{0,20}(?:更新|修订|变更)", "文本未说明政策如何变更")}
    disputes = []
    for kind, pat in (("regulator", r"网信|12377|监管部门"), ("court", r"人民法院|诉讼"), ("arbitration", r"仲裁")):
        hit = r.find(pat)
        if hit:
            disputes.append({"kind": kind, "value": hit[0].group(0), "source": {"quote": hit[1]}})
    measures = []
    for kind, pat in _MEASURES:
        hit = r.find(pat)
        if hit:
            measures.append({"measure": kind, "description": hit[0].group(0), "source": {"quote": hit[1]}})
    exc = r.find(r"(?:无需|不需要|无须)[^。]{0,10}(?:征得|取得)?[^。]{0,6}同意|征得[^。]{0,6}同意的例外")
    features = _features(r, unmapped)
    if not features:
        features = [{"id": "feature_1", "name": "（文本未列出功能）", "kind": "extended", "purposes": ["（文本未写明目的）"],
                     "legal_basis": "consent", "collects_nothing": False,
                     "kind_source": silent("文本未列出收集个人信息的功能"),
                     "legal_basis_source": silent("文本未写明合法性基础"),
                     "source": silent("文本未列出收集个人信息的功能，须人工补充")}]
    cancel = r.find(r"注销[^。]{0,10}(?:账号|账户|帐号|帐户)")
    decl: dict[str, Any] = {
        "schema_version": 1,
        "tenant": tenant or _slug(name),
        "source_file": Path(file).name,
        "app": {"name": app_name, "product_types": [], "platforms": [],
                "source": {"quote": r.quote(title.start(), title.end())} if title else silent("文本未写明应用名称")},
        "version": {"label": _version_label(r, name), "stated_version": _stated(r, r"版本号[：:\s]*([Vv]?\d+(?:\.\d+)*)", 1, "文本未给出版本号"),  # noqa: E501
                    "updated_date": _date(r, r"(?:更新|发布)日期|更新时间|本版发布日期"),
                    "effective_date": _date(r, r"生效日期|生效时间")},
        "controller": controller,
        "features": features,
        "sdks": _sdks(r),
        "recipients": _recipients(r),
        "storage": storage,
        "retention": _retention(r),
        "security_measures": measures,
        "response_time": response,
        "rights": _rights(r),
        "minors": minors,
        "incident_notice": incident,
        "policy_changes": changes,
        "disputes": disputes,
        "consent_exceptions": {"source": {"quote": exc[1]} if exc else silent("文本未列出无需同意的情形")},
    }
    if cancel:
        decl["account_cancellation"] = {"source": {"quote": cancel[1]}}
    return Draft(decl, list(unmapped))


def _company(view: str) -> re.Match[str] | None:
    m = re.search(r"[\u4e00-\u9fff（）()]{4,40}?(?:有限责任公司|有限公司|股份公司)", view)
    if not m:
        return None
    cut = [k.end() for k in re.finditer(r"主体(?:为|是)?|运营者(?:为|是)?|开发者(?:为|是)?|由|是|为|指|即|的|：|:", m.group(0)[:-4])]  # noqa: E501
    start = m.start() + (cut[-1] if cut else 0)
    return re.compile(r".+").match(view, start, m.end())


def _addr(r: _Reader, label: str) -> dict[str, Any]:
    m = re.search(r"(?:" + label + r")[为是：:\s]*([^。；，,\n]{4,60})", r.pt.view)
    if not m:
        return {"value": None, "source": silent(f"文本未给出{label.split('|')[0]}")}
    return {"value": _clean(r.quote(m.start(1), m.end(1))), "source": {"quote": r.quote(m.start(), m.end())}}


def _version_label(r: _Reader, fallback: str) -> str:
    m = re.search(r"(?:生效|更新)日期[^0-9]{0,12}(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日", r.pt.view)
    if m:
        return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    return "draft"


def dump_yaml(draft: Draft) -> str:
    """The draft as YAML, with the unmapped phrases as comments at the top for a person to map."""
    import io

    from ruamel.yaml import YAML

    y = YAML()
    y.default_flow_style = False
    y.allow_unicode = True
    y.width = 4096
    buf = io.StringIO()
    y.dump(draft.declaration, buf)
    head = ["# 由 yinsi policy analyze --draft 生成的声明草稿：每个元素引用原文；silent: true 表示原文未说明。",
            "# 须人工核对：功能划分、基本/扩展功能、合法性基础、个人信息项的映射。"]
    if draft.unmapped:
        head.append("# 未能映射到分类表的短语（请人工映射或补充分类表）：")
        head.extend(f"#   - {p}" for p in draft.unmapped)
    return "\n".join(head) + "\n" + buf.getvalue()
