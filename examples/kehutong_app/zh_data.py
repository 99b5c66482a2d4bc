"""Pools of realistic Chinese data for the 客户通 generator.

Names, GB/T 2260 district codes, 号段, roads, estates and carrier IP ranges are the 微聊客 demo app's
(``examples/weiliaoke_app/zh_data.py``, loaded from that file so both apps draw from one list); the pools
below are the property-management ones: repair problems and rooms, fee types, relations.
Nothing here identifies a real person: every value is drawn at random.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _weiliaoke_pools() -> ModuleType:
    name = "_yinsi_demo_weiliaoke_zh_data"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "weiliaoke_app" / "zh_data.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_W = _weiliaoke_pools()
SURNAMES = _W.SURNAMES
GIVEN_MALE: str = _W.GIVEN_MALE
GIVEN_FEMALE: str = _W.GIVEN_FEMALE
REGIONS = _W.REGIONS
ROADS = _W.ROADS
ROAD_SUFFIX = _W.ROAD_SUFFIX
ESTATE_HEAD = _W.ESTATE_HEAD
ESTATE_BODY = _W.ESTATE_BODY
MOBILE_PREFIXES: tuple[str, ...] = _W.MOBILE_PREFIXES
IP_FIRST_OCTETS: tuple[int, ...] = _W.IP_FIRST_OCTETS

#: Relation of a household member to the owner (``residents.relation``), with the owner's row as 本人.
RELATIONS = ("配偶", "配偶", "子女", "子女", "父母", "兄弟姐妹")
#: How a relative is called in a ticket's text, by relation.
RELATION_WORDS = {"配偶": ("爱人", "老公/老婆"), "子女": ("孩子", "儿子/女儿"), "父母": ("父亲/母亲", "老人"),
                  "兄弟姐妹": ("哥哥/姐姐", "弟弟/妹妹"), "本人": ("业主", "户主")}
ROOMS = ("厨房", "卫生间", "客厅", "主卧", "次卧", "阳台", "书房")
THINGS = ("水龙头", "燃气灶", "空调外机", "入户门锁", "下水道", "热水器", "马桶水箱", "阳台窗户", "可视对讲",
          "地暖分水器", "插座", "吸顶灯")
PROBLEMS = ("漏水", "坏了", "打不开", "堵了", "不出热水", "异响", "跳闸", "有裂缝")
#: Ticket texts. ``{who}``/``{who_phone}``: a relative; ``{nb}``/``{nb_phone}``: a neighbour; ``{owner}``,
#: ``{owner_id}``: the household owner and their ID number. Mentions are how other people's PI ends up in
#: a ticket somebody else filed.
TICKET_PLAIN = (
    "{room}{thing}{problem}，请师傅上门维修。",
    "{room}的{thing}{problem}好几天了，麻烦尽快处理。",
    "公共走廊的灯不亮，{room}门口也很暗，请安排检修。",
    "{thing}{problem}，工作日晚上七点后在家。",
)
TICKET_RELATIVE = (
    "{room}{thing}{problem}，我白天上班，{word}{who}在家，上门前请打{who_phone}。",
    "{thing}{problem}，联系人{who}，手机{who_phone}，周末都在。",
    "帮{word}{who}报修：{room}{thing}{problem}，有问题打{who_phone}找{who}。",
)
TICKET_NEIGHBOUR = (
    "{room}天花板渗水，可能是楼上{nb}家（电话{nb_phone}）的卫生间漏了，请物业协调。",
    "楼下邻居{nb}（{nb_phone}）反映我家{thing}{problem}影响到他家，请尽快上门查看。",
    "隔壁{nb}家装修噪音太大，已和{nb}沟通无果，他的电话是{nb_phone}。",
)
TICKET_OWNER_ID = (
    "业主{owner}委托我办理{thing}维修，业主身份证号{owner_id}，已在物业前台登记。",
)
FEE_TYPES: tuple[tuple[str, int, int], ...] = (  # (fee, min yuan, max yuan)
    ("物业费", 600, 4800), ("物业费", 600, 4800), ("停车费", 1200, 3600), ("水电代缴", 80, 600),
)
PAY_CHANNELS = ("wechat", "wechat", "alipay", "bank")
APP_PATHS = ("/home", "/repair/new", "/repair/list", "/visitor/new", "/bill/list", "/bill/pay", "/notice",
             "/me", "/me/family")
STAFF = ("wy_zhangli", "wy_wangqiang", "wy_liuyan", "wy_chenjing", "wy_zhaolei", "wy_sunmin", "wy_zhoutao")
PLATE_HEADS = ("京A", "沪B", "粤B", "浙A", "苏E", "川A", "鄂A", "湘A", "鲁B", "陕A")
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
