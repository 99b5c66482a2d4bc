"""``yinsi demo``: the main job from the README, on the five seed declarations."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table

from yinsi.cli.apps import app, console
from yinsi.cli.policy_cmds import print_diff
from yinsi.declarations import load_declaration
from yinsi.domain.changes import diff_declarations
from yinsi.domain.lint import lint_declaration
from yinsi.domain.policy import Declaration
from yinsi.storage.engine import display_url

SEED_FILES = (
    "weiliaoke-2020.yaml", "weiliaoke-2022.yaml", "jikeanjia-2020.yaml", "58jingxuan-2021.yaml",
    "kehutong-2021.yaml",
)


def policies_dir(explicit: Path | None = None) -> Path:
    """The seed declarations: ``--policies``, else ./policies, else the checkout's policies/."""
    if explicit is not None:
        return explicit
    here = Path.cwd() / "policies"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "policies"


@app.command("demo")
def demo(
    policies: Path | None = typer.Option(None, "--policies", help="种子声明所在目录（默认 ./policies）"),
    out: Path = typer.Option(Path("out"), "--out", help="渲染结果输出目录"),
) -> None:
    """演示：加载五个种子声明，合规检查，渲染一份政策，对比微聊客两个版本。"""
    base = policies_dir(policies)
    missing = [f for f in SEED_FILES if not (base / f).is_file()]
    if missing:
        console.print(f"[red]找不到种子声明[/red]：{base} 下缺少 {'、'.join(missing)}")
        raise typer.Exit(2)
    decls: dict[str, Declaration] = {}
    with console.status("加载并校验种子声明…"):
        for name in SEED_FILES:
            decls[name] = load_declaration(base / name)
    console.print(Panel.fit("Yinsi（隐私）演示：一份声明，生成政策文本、双清单、版本对比与合规检查", style="bold"))

    table = Table(title="一、五个种子声明的合规检查（RULES.md）")
    for col in ("声明", "应用", "运营者", "生效日期", "功能", "个人信息项", "SDK", "错误", "警告", "提示", "主要问题（规则）"):
        table.add_column(col, overflow="fold")
    for name, d in decls.items():
        findings = lint_declaration(d)
        sev = Counter(f.severity for f in findings)
        rules = Counter(f.rule for f in findings if f.severity == "error")
        top = "、".join(f"{r}×{n}" if n > 1 else r for r, n in sorted(rules.items()))
        table.add_row(
            name.removesuffix(".yaml"), d.app.name, d.controller.legal_name.value or "未载明",
            str(d.version.effective_date.value or "未载明"), str(len(d.features)),
            str(len(d.collected_items())), str(len(d.sdks)), str(sev["error"]), str(sev["warning"]),
            str(sev["info"]), top or "—",
        )
    console.print(table)
    console.print("逐条结果：[bold]yinsi policy lint policies/*.yaml[/bold]（--json 供程序读取）")

    render_name = "weiliaoke-2022.yaml"
    out.mkdir(parents=True, exist_ok=True)
    try:
        from yinsi.render import render_html, render_lists, render_markdown
    except ImportError:  # pragma: no cover - render is part of the package
        console.print("[red]渲染模块不可用[/red]")
        raise typer.Exit(2) from None
    d = decls[render_name]
    md_path = out / render_name.replace(".yaml", ".md")
    html_path = out / render_name.replace(".yaml", ".html")
    md_path.write_text(render_markdown(d), encoding="utf-8")
    html_path.write_text(render_html(d), encoding="utf-8")
    lists = render_lists(d)
    console.print(f"\n[bold]二、渲染[/bold] {d.app.name}（{d.version.label}）隐私政策 → {md_path}、{html_path}")
    console.print("  " + "；".join(f"{k}：{len(v)} 项" for k, v in lists.items() if isinstance(v, list)))

    console.print("\n[bold]三、微聊客 2020 → 2022 版本对比[/bold]")
    result = diff_declarations(decls["weiliaoke-2020.yaml"], decls["weiliaoke-2022.yaml"])
    print_diff(result, per_criterion=5)
    console.print("完整对比：[bold]yinsi policy diff policies/weiliaoke-2020.yaml policies/weiliaoke-2022.yaml[/bold]")

    from yinsi.config import database_url
    from yinsi.services.publishing import PublishError, VersionConflict, history, publish
    from yinsi.storage.errors import StorageError

    url = database_url()
    console.print(f"\n[bold]四、发布与存档[/bold]（数据库：{display_url(url)}）")
    try:
        for name in SEED_FILES:
            try:
                publish(base / name, url=url, by="yinsi demo")
            except VersionConflict as exc:  # the seed was edited since the last demo: keep the archive intact
                console.print(f"  [yellow]未重新发布[/yellow] {name}：{exc}（已存档的版本保持不变）")
        versions = history("weiliaoke", url=url)
    except (PublishError, StorageError) as exc:
        console.print(f"[red]发布失败[/red]：{exc}")
        raise typer.Exit(1) from None
    for v in versions:
        console.print(f"  微聊客 {v.label}：生效 {v.effective_date or '未载明'}，运营者 {v.controller_name}，"
                      f"文本哈希 {v.declaration_hash[:12]}，{v.lint_errors} 个错误 / {v.lint_warnings} 个警告")
    console.print("历史版本：[bold]yinsi policy history weiliaoke[/bold]；旧版全文："
                  "[bold]yinsi policy show weiliaoke 2020-06-07[/bold]")
    _gate_demo(url)
    _rights_demo(url, out)


def _gate_demo(url: str) -> None:
    """五：a person on 微聊客 2022 shares a location in chat: refusal, consents, permission, withdrawal, 双清单."""
    import uuid

    from yinsi.cli.consent_cmds import _print_report, print_decision
    from yinsi.domain.taxonomy import Action
    from yinsi.services.consent import ConsentService

    subject = f"demo-{uuid.uuid4().hex[:6]}"
    req = {"feature": "customer_chat", "items": ["location.precise"], "device": "demo-phone"}
    console.print(f"\n[bold]五、处理闸门：微聊客 2022，置业顾问 {subject} 在微聊中发送位置[/bold]")
    with ConsentService(url) as svc:
        console.print("1）尚未取得任何同意时询问闸门：")
        print_decision(svc.check("weiliaoke", subject, Action.COLLECT, **req), Action.COLLECT)  # type: ignore[arg-type]
        svc.record_consent("weiliaoke", subject, "policy")
        svc.record_consent("weiliaoke", subject, "item:customer_chat:location.precise",
                           disclosures={"necessity": "向客户发送您所在楼盘的位置", "impact": "位置信息泄露可能暴露您的行踪"})
        svc.record_permission("weiliaoke", subject, "demo-phone", "location", "granted", feature="customer_chat")
        console.print("2）同意隐私政策、就精准位置单独同意、授予位置权限之后：")
        print_decision(svc.check("weiliaoke", subject, Action.COLLECT, **req), Action.COLLECT)  # type: ignore[arg-type]
        svc.check("weiliaoke", subject, Action.USE, feature="register_login", items=["contact.mobile"])
        console.print("   向交付方提供订单信息（以履行合同为依据，无需同意）：")
        print_decision(svc.check("weiliaoke", subject, Action.PROVIDE, recipient="delivery_parties",
                                 items=["transaction.order"]), Action.PROVIDE)
        svc.record_consent("weiliaoke", subject, "item:customer_chat:location.precise", "withdrawn")
        console.print("3）撤回对精准位置的单独同意之后：")
        print_decision(svc.check("weiliaoke", subject, Action.COLLECT, **req), Action.COLLECT)  # type: ignore[arg-type]
        console.print("4）此人的个人信息收集与共享清单（双清单，来自处理记录）：")
        _print_report(svc.report("weiliaoke", subject))
    console.print(f"同样的操作：[bold]yinsi gate check weiliaoke {subject} --action collect --feature customer_chat "
                  "--item location.precise --device demo-phone[/bold]；[bold]yinsi subject report weiliaoke "
                  f"{subject}[/bold]")


def _rights_demo(url: str, out: Path) -> None:
    """六：rights requests against the demo app's real database: a copy, a restriction the gate enforces, then
    a cancellation."""
    import json
    import os
    import uuid

    from sqlalchemy import text

    from yinsi.cli.demoapp_cmds import demo_app_dir, load_demo_app
    from yinsi.config import data_dir
    from yinsi.datamap_io import load_datamap, with_key_prefixes
    from yinsi.domain.datamap import RedisStore
    from yinsi.domain.rights import STATE_ZH, RequestType
    from yinsi.notify.channels import SMS_OUTBOX_FILE, FileSmsChannel
    from yinsi.rights.service import RightsService
    from yinsi.storage.engine import make_engine
    from yinsi.stores.sql import dispose_engines

    demo_app = load_demo_app()
    app_db = data_dir() / "demo-app.db"
    app_db.unlink(missing_ok=True)
    app_url = f"sqlite:///{app_db.as_posix()}"
    redis_url = os.environ.get("WEILIAOKE_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"yinsi-demo-{uuid.uuid4().hex[:8]}:"
    dm = load_datamap(demo_app_dir() / "datamap.yaml").datamap
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
        dm = with_key_prefixes(dm, {"cache": prefix})
    except Exception:
        redis_url = ""
        dm = dm.model_copy(update={"stores": [st for st in dm.stores if not isinstance(st, RedisStore)]})
    console.print(f"\n[bold]六、权利请求：在演示应用的真实数据库中执行[/bold]（{app_db}）")
    if not redis_url:
        console.print("  [yellow]Redis 不可用[/yellow]：本次演示不含会话与验证码缓存（设置 WEILIAOKE_REDIS_URL 后重试）")
    from yinsi.auth.demo_staff import DEMO_PASSWORD, DemoStaffUnavailable, demo_login, ensure_demo_staff
    from yinsi.auth.staff import StaffAuthService
    from yinsi.staff import actions
    from yinsi.staff.service import StaffService

    with StaffAuthService(url) as auth:
        try:
            team = ensure_demo_staff(auth, "weiliaoke", data_dir())
        except DemoStaffUnavailable as exc:
            console.print(f"  [yellow]跳过[/yellow]：{exc}")
            return
        po_token, po = demo_login(auth, team, "demo-po")
        cs_token, cs_agent = demo_login(auth, team, "demo-cs")
    console.print(f"  工作人员以真实账号登录（口令 {DEMO_PASSWORD} 加动态验证码，账号见 {team.path}）："
                  "个人信息保护负责人 demo-po，客服 demo-cs")
    engine = make_engine(app_url)
    demo_app.create_schema(engine)
    demo_app.seed(app_url, 20, 2022, redis_url=redis_url or None, redis_prefix=prefix)
    with engine.connect() as conn:
        agent = int(conn.execute(text("SELECT o.agent_id FROM orders o JOIN invoices i ON i.order_id = o.id "
                                      "ORDER BY o.agent_id LIMIT 1")).scalar() or 1)
    urls = {"app_db": app_url, **({"cache": redis_url} if redis_url else {})}
    tenant, who = "weiliaoke", str(agent)
    phone = data_dir() / "demo-phone"  # the person's phone: the development SMS gateway writes here
    with RightsService(url, datamaps={tenant: dm}, store_urls=urls, channels={"sms": FileSmsChannel(phone)}) as svc:
        staff = StaffService(svc.sessions, svc.audit.log, None, clock=svc.clock)
        rid = svc.submit(tenant, who, RequestType.COPY)
        challenge = svc.send_code(tenant, rid, "sms")
        console.print(f"1）置业顾问 {agent} 申请复制个人信息；{challenge.notice_zh}")
        last = (phone / SMS_OUTBOX_FILE).read_text(encoding="utf-8").splitlines()[-1]
        code = str(json.loads(last)["params"]["code"])
        console.print(f"   输入验证码：{svc.check_code(tenant, rid, code).reason_zh}")
        state = svc.run(tenant, rid, "yinsi demo")
        view = svc.show(tenant, rid)
        package = actions.export_package(po, staff, svc, rid, out / f"copy-{agent}.zip")
        result = view.result or {}
        console.print(f"   {STATE_ZH[state]}：{result.get('values')} 项数据、{len(result.get('items', []))} 类个人信息"
                      f" → {package}（JSON、CSV、中文网页）；另有 {len(result.get('excluded', []))} 个外部系统由人工调取")
        actions.complete_manual_step(po, staff, svc, rid, "已从外部系统调取并交付")

        cs = svc.consents
        for scope in ("policy", "feature:marketing"):
            cs.record_consent(tenant, who, scope)
        ask = {"feature": "marketing", "items": ["contact.mobile"], "actor": "yinsi demo"}
        before = cs.check(tenant, who, "use", **ask)
        rid = svc.submit(tenant, who, RequestType.RESTRICTION, details={"features": ["marketing"]})
        actions.verify_in_person(cs_agent, staff, svc, rid, "当面核对身份证件")
        svc.run(tenant, rid, "yinsi demo")
        after = cs.check(tenant, who, "use", **ask)
        console.print(f"2）同一人要求限制营销活动的处理：此前闸门{'允许' if before.allowed else '拒绝'}使用其手机号营销，"
                      f"此后{'允许' if after.allowed else '拒绝'}——{after.reasons[0].message if after.reasons else ''}")
        actions.lift_restriction(po, staff, svc, rid, "本人申请解除")

        rid = svc.submit(tenant, who, RequestType.CANCEL_ACCOUNT)
        actions.verify_in_person(cs_agent, staff, svc, rid, "当面核对身份证件")
        svc.confirm(tenant, rid)
        console.print(f"3）同一人申请注销账号，已核验并确认（不可撤回）；截止 {svc.show(tenant, rid).due_date}")
        state = svc.run(tenant, rid, "yinsi demo")
        pending = [st for st in svc.show(tenant, rid).steps if st["status"] == "manual_pending"]
        console.print(f"   自动部分已删除并回读核实，{len(pending)} 个外部系统等待人工：" +
                      "；".join(str((st["detail"] or {}).get("who")) for st in pending))
        state = actions.complete_manual_step(po, staff, svc, rid, "外部系统已删除（工单 WB-1）")
        view = svc.show(tenant, rid)
        r = view.result or {}
        console.print(f"   {STATE_ZH[state]}：{r.get('verified_locations')} 个位置回读核实无残留；"
                      f"{r.get('legal_hold_rows')} 条依法保存的记录（订单、发票、登录日志）已移入加密的法定保存库；"
                      f"结束同意 {r.get('consents_ended')} 项")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, phone, name, id_number FROM agents WHERE id = :a"), {"a": agent}).one()
        left = sum(int(conn.execute(text(f"SELECT count(*) FROM {t} WHERE agent_id = :a"), {"a": agent}).scalar() or 0)
                   for t in ("property_bindings", "posts", "orders", "chat_messages", "devices", "login_logs"))
    engine.dispose()
    dispose_engines()
    with StaffAuthService(url) as auth:
        auth.logout(po_token)
        auth.logout(cs_token)
    if redis_url:  # the demo's keys (the other agents' sessions) do not outlive the demo
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    console.print(f"   独立 SQL 核对：账号行 status={row[0]}，手机号/姓名/身份证号={row[1]}/{row[2]}/{row[3]}；"
                  f"业务表中剩余行 {left}")
    console.print(f"同样的操作：[bold]yinsi request --help[/bold]；说明见 docs/rights.md；请求详情："
                  f"[bold]yinsi request show {tenant} {rid[:8]}[/bold]")
