"""Facts the name/address features use: Chinese surnames and the words around names and addresses.

The surnames are the common single-character and compound surnames of the traditional 百家姓 list and of public
surname-frequency tables (public facts, typed in here; no list of people). The context words are ordinary
form labels (姓名、联系人…), forms of address (先生、女士…) and address units (省、市、路、号、室…).
"""

from __future__ import annotations

#: Single-character surnames, roughly from the most to the least frequent.
SURNAME_ORDER = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康"
    "施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成"
    "苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫"
    "费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈"
    "匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰"
    "支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕"
    "危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
SINGLE_SURNAMES = frozenset(SURNAME_ORDER)
#: The hundred most frequent, covering most people; a bare value that starts with one of them looks like a name
#: (column classification), while rarer surnames (常, 和, 时…) are too often ordinary words (常客, 时间).
COMMON_SURNAMES = frozenset(SURNAME_ORDER[:100])

COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯",
    "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "呼延", "万俟", "闻人", "澹台", "公冶", "太史", "申屠",
})

#: Form labels and roles that are followed by a name (姓名：常建良, 联系人：邵毅平).
NAME_BEFORE = (
    "姓名", "名字", "联系人", "收件人", "收货人", "寄件人", "发件人", "负责人", "经办人", "申请人", "法人", "代表人",
    "患者", "病人", "客户", "用户", "会员", "学生", "员工", "户主", "业主", "租客", "房东", "被保险人", "投保人",
    "受益人", "担保人", "借款人", "出借人", "委托人", "代理人", "持卡人", "开户人", "账户名", "户名", "签名", "署名",
    "主治医生", "医生", "医师", "护士", "教师", "班主任", "记者", "编辑", "作者", "通讯员", "主持人", "导演", "主演",
    "总经理", "董事长", "主席", "总理", "书记", "部长", "省长", "市长", "县长", "局长", "处长", "科长", "校长", "院长",
    "主任", "教授", "博士", "老师", "先生", "女士", "同志", "同学", "师傅", "经理", "总裁", "总监", "队长", "教练",
    "球员", "选手", "演员", "歌手", "本人", "父亲", "母亲", "丈夫", "妻子", "儿子", "女儿", "朋友", "同事",
)

#: Words that follow a name (邵先生, 常建良同志, 李瑞环主席).
NAME_AFTER = (
    "先生", "女士", "小姐", "同志", "老师", "教授", "博士", "医生", "大夫", "律师", "师傅", "同学", "总", "主席", "总理",
    "书记", "部长", "省长", "市长", "县长", "局长", "经理", "董事长", "院士", "委员", "主任", "校长", "院长", "记者",
    "说", "表示", "认为", "指出", "强调", "介绍", "告诉", "称", "等", "和", "与", "、", "，", "：", "的", "是", "在",
    "出生", "性别", "男", "女", "电话", "手机", "身份证", "住址", "地址", "年龄", "岁",
)

#: Characters an address unit ends in.
ADDRESS_UNITS = frozenset("省市区县镇乡村路街道巷弄号栋幢楼层室单元园苑小区里屯庄组社场厦座院")

#: Labels followed by an address.
ADDRESS_BEFORE = ("地址", "住址", "住所", "户籍", "籍贯", "现住", "居住", "家住", "位于", "坐落", "寄往", "送至",
                  "收货地址", "通讯地址", "联系地址", "家庭住址", "详细地址", "所在地", "注册地")
