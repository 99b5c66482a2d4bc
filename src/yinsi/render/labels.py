"""Chinese labels (中文标签) for declaration values that the policy text shows to people.

Labels owned by the domain (``RIGHT_ZH``, ``CHANNEL_KIND_ZH``, ``RECIPIENT_KIND_ZH``, ``LEGAL_BASIS_ZH``)
are imported from there; the ones below exist only because the rendered policy needs them.
"""

from __future__ import annotations

from datetime import date

NOT_STATED = "未载明"

COLLECTION_METHOD_ZH: dict[str, str] = {
    "user_provided": "您主动提供",
    "device_permission": "经您授权的设备权限获取",
    "automatic": "在您使用服务时自动收集",
    "third_party": "从第三方间接获取",
    "sdk": "由第三方SDK收集",
    "generated": "在服务过程中产生",
    "unstated": NOT_STATED,
}

FEATURE_KIND_ZH: dict[str, str] = {"basic": "基本业务功能", "extended": "扩展业务功能"}

RECIPIENT_ACTION_ZH: dict[str, str] = {
    "provide": "共享（向其他个人信息处理者提供）",
    "entrust": "委托处理",
    "transfer": "转让",
    "disclose": "公开披露",
    "transfer_abroad": "向境外提供",
}

# Order of the subsections of section 二.
RECIPIENT_ACTION_ORDER: tuple[str, ...] = ("provide", "entrust", "transfer", "disclose", "transfer_abroad")

CROSS_BORDER_ZH: dict[str, str] = {
    "none": "我们不会向境外提供您的个人信息。",
    "possible_with_consent": "如确需向境外提供您的个人信息，我们将依法告知您并取得您的单独同意。",
    "yes": "我们会向境外提供您的个人信息。",
    "unstated": f"是否向境外提供个人信息：{NOT_STATED}。",
}

RETENTION_ACTION_ZH: dict[str, str] = {
    "delete": "删除",
    "anonymise": "匿名化处理",
    "delete_or_anonymise": "删除或匿名化处理",
    "unstated": NOT_STATED,
}

SECURITY_MEASURE_ZH: dict[str, str] = {
    "encryption": "加密",
    "masking": "脱敏展示",
    "deidentification": "去标识化",
    "access_control": "访问控制",
    "audit": "安全审计",
    "authentication": "身份认证",
    "backup": "数据备份",
    "training": "人员培训",
    "incident_plan": "应急预案",
    "risk_control": "风险控制",
    "other": "其他措施",
}

DISPUTE_KIND_ZH: dict[str, str] = {
    "regulator": "向监管部门投诉举报",
    "court": "向人民法院提起诉讼",
    "arbitration": "提交仲裁",
    "consumer_association": "向消费者协会投诉",
    "other": "其他途径",
}

# The six major-change criteria (重大变更情形) as the seed policies and GB/T 35273 list them.
MAJOR_CHANGE_ZH: dict[int, str] = {
    1: "我们的服务模式发生重大变化，如处理个人信息的目的、处理的个人信息类型、个人信息的使用方式等；",
    2: "我们在所有权结构、组织架构等方面发生重大变化，如业务调整、破产并购等引起的所有者变更等；",
    3: "个人信息共享、转让或公开披露的主要对象发生变化；",
    4: "您参与个人信息处理方面的权利及其行使方式发生重大变化；",
    5: "我们负责处理个人信息安全的责任部门、联络方式及投诉渠道发生变化；",
    6: "个人信息安全影响评估报告表明存在高风险。",
}

ALL_ITEMS_ZH = "本政策所述的全部个人信息（通用规则）"

SENSITIVE_MARK = "【敏感】"


def date_zh(value: date | None) -> str:
    """``2022年7月28日``; ``未载明`` for a date the text does not give (never invented)."""
    if value is None:
        return NOT_STATED
    return f"{value.year}年{value.month}月{value.day}日"


def days_zh(days: int) -> str:
    """``1095天（3年）``: the declared number of days, with whole years where they are exact."""
    if days % 365 == 0:
        return f"{days}天（{days // 365}年）"
    return f"{days}天"


def yes_no(value: bool | None) -> str:
    """是 / 否 / 未载明."""
    if value is None:
        return NOT_STATED
    return "是" if value else "否"
