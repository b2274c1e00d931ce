"""Words on the line screen and in shift reports: Chinese first, English second.

One table of (Chinese, English) pairs keyed by a stable name, so that the page, the report and the
error answers of the server all say the same thing. Reason names are the controller's and the
PLC's own (fastpath.Reason, drivers.regmap.DivertResult).
"""

LANGUAGES = ("zh", "en")

TEXT = {
    # -- the screen ---------------------------------------------------------------------------
    "title": ("分拣线监控", "Sorting line"),
    "line_state": ("线体状态", "Line state"),
    "plan": ("分拣计划", "Sort plan"),
    "plan_refused": ("新计划被拒绝，当前计划继续生效", "New plan refused, the active plan stays"),
    "parcels_per_min": ("每分钟件数", "Parcels per minute"),
    "per_hour": ("件/小时", "parcels/h"),
    "read_rate": ("读取率", "Read rate"),
    "sort_rate": ("分拣率", "Sort rate"),
    "parcels": ("包裹", "Parcels"),
    "scanned": ("已扫描", "Scanned"),
    "decided": ("已决策", "Decided"),
    "sent": ("已下发", "Sent"),
    "past_deadline": ("超时决策", "Past deadline"),
    "rejects": ("异常件（按原因）", "Rejects by reason"),
    "no_rejects": ("暂无异常件", "No rejects"),
    "chutes": ("格口", "Chutes"),
    "slack": ("决策余量", "Deadline slack"),
    "slack_min": ("最近 50 件中的最小值", "lowest of the last 50"),
    "slack_median": ("中位", "median"),
    "budget": ("预算", "budget"),
    "recent": ("最近包裹", "Last parcels"),
    "tracking": ("跟踪号", "Tracking"),
    "waybill": ("运单号", "Waybill"),
    "routing_code": ("三段码", "Routing code"),
    "destination": ("目的地", "Destination"),
    "chute": ("格口", "Chute"),
    "reason": ("原因", "Reason"),
    "read_by": ("读取方式", "Read by"),
    # a barcode read but in no courier's number format (vision.result.UNKNOWN_FORMAT): add the rule
    "unknown_format": ("未知单号格式（请在分拣计划中添加快递公司单号规则）",
                       "Number in no courier's format (add the courier's format to the sort plan)"),
    "nothing_read": ("未读到", "nothing read"),
    "no_image": ("无图像", "no image"),
    "latency": ("耗时", "Time"),
    "logbook": ("操作记录", "Logbook"),
    "left": ("左侧", "left"),
    "right": ("右侧", "right"),
    "end": ("尾端", "end"),
    "belt": ("皮带方向 →", "belt direction →"),
    "full": ("满包", "full"),
    "disabled": ("已停用", "disabled"),
    "faulted": ("故障", "faulted"),
    "stale": ("画面未更新：与控制器的连接中断，正在重连", "Screen not updating: connection to the controller lost, reconnecting"),
    "since_start": ("本次启动以来", "since start"),
    "login_for_parcels": ("登录后显示包裹明细和操作记录", "Log in to see parcel details and the logbook"),
    "alarm_since": ("自 {time} 起", "since {time}"),
    "alarm_count": ("共 {n} 次", "{n} times"),
    "alarm_once": ("共 1 次", "once"),
    # -- technician actions ---------------------------------------------------------------------
    "technician": ("技术员操作", "Technician"),
    "name": ("姓名", "Name"),
    "token": ("口令", "Token"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "logged_in_as": ("已登录：", "Logged in: "),
    "disable_chute": ("停用格口", "Disable chute"),
    "enable_chute": ("启用格口", "Enable chute"),
    "reload_plan": ("重新加载分拣计划", "Reload sort plan"),
    "confirm_disable": ("确认停用格口 {chute}？该格口的包裹将改去同目的地的下一个格口。",
                        "Disable chute {chute}? Its parcels go to the next chute of their destination."),
    "confirm_enable": ("确认启用格口 {chute}？", "Enable chute {chute}?"),
    "done": ("已完成", "Done"),
    "plan_loaded": ("已加载分拣计划 {version}", "Plan {version} loaded"),
    "click_chute": ("登录后点击格口可停用或启用", "After logging in, tap a chute to disable or enable it"),
    # logbook entries (Records.action names), shown in the reader's language
    "act:disable chute": ("停用格口", "disable chute"),
    "act:enable chute": ("启用格口", "enable chute"),
    "act:reload plan": ("加载分拣计划", "reload plan"),
    "act:reload plan refused": ("分拣计划被拒绝", "plan reload refused"),
    "act:screen login": ("登录", "logged in"),
    "act:screen login refused": ("口令错误", "wrong token"),
    "act:manual coding": ("人工补码", "manual coding"),
    "act:manual coding no courier": ("补码：未知快递单号", "manual coding: no known courier"),
    "act:pre-advice added": ("加入预报数据", "added to pre-advice"),
    # -- errors the server answers with ---------------------------------------------------------
    "bad_token": ("口令错误，操作被拒绝", "Wrong token: refused"),
    "name_needed": ("请填写姓名：每个操作都会记录操作人", "Enter your name: every action is recorded with who did it"),
    "too_many_tries": ("口令错误次数过多：此后的错误口令将延迟答复；正确口令仍可立即登录",
                       "Too many wrong tokens: further wrong ones are answered slowly; the right token still "
                       "logs in at once"),
    "not_logged_in": ("未登录或登录已过期，请重新登录", "Not logged in, or the login expired: log in again"),
    "csrf": ("请求来源无效（防跨站保护），请刷新页面后重试", "Request refused by cross-site protection: reload the page and retry"),
    "no_such_chute": ("格口 {chute} 不存在", "Chute {chute} does not exist on this line"),
    "plc_unreachable": ("无法写入 PLC：检查 PLC 连接后重试", "Could not write to the PLC: check the PLC link and retry"),
    "plan_error": ("分拣计划有错误，未加载", "The sort plan has errors and was not loaded"),
    "busy": ("控制器忙，请稍后重试", "The controller is busy: retry in a moment"),
    "bad_request": ("请求格式错误", "Malformed request"),
    "bad_image": ("图像无法显示", "The image gives no picture"),
    # -- the manual coding table (edge/web/coding.py) -------------------------------------------
    "coding_title": ("人工补码", "Manual coding"),
    "coding_prompt": ("扫描或输入运单号，按回车", "Scan or type the waybill, then Enter"),
    "coding_waiting": ("等待扫描", "Waiting for a scan"),
    "courier": ("快递公司", "Courier"),
    "coding_no_courier": ("不是已知快递公司的单号", "Not a waybill of any known courier"),
    "coding_no_courier_check": (
        "请检查：扫的是否是运单条码（不是订单号、商品码）；如是新快递公司的单号，请技术员在分拣计划中添加其单号规则。"
        "包裹暂留尾端格口。",
        "Check that the barcode scanned is the waybill (not an order or product code); if it is a new "
        "courier's number, a technician adds its format to the sort plan. The parcel stays at the end chute."),
    "coding_no_rule_check": ("分拣计划中没有该单号的目的地：放入格口 {chute}；技术员可选择目的地加入预报数据。",
                             "The sort plan gives this waybill no destination: put it in chute {chute}; a "
                             "technician can choose its destination and add it to the pre-advice."),
    "coding_on_line": ("线上记录", "On the line"),
    "coding_parcel": ("跟踪号 {tracking} · {time} · 原格口 {chute}", "Tracking {tracking} · {time} · chute {chute}"),
    "coding_not_found": ("近 4 小时的包裹记录中没有读到此单号（未识别的包裹记录中没有单号）",
                         "No parcel of the last 4 hours was read with this number (a parcel not read has no "
                         "number in its record)"),
    "coding_add_preadvice": ("加入预报数据", "Add to pre-advice"),
    "coding_added": ("已加入预报文件 {file}：计划重新加载后，重新上线的包裹将自动分拣",
                     "Added to {file}: once the plan has reloaded, the parcel sorts itself when put on the belt again"),
    "coding_already": ("预报数据中已有此记录", "The pre-advice already has this record"),
    "coding_login_to_add": ("技术员登录后可加入预报数据", "A technician who logs in can add it to the pre-advice"),
    "coding_history": ("最近补码", "Last coded"),
    "coding_too_fast": ("扫描过快，请稍候再扫", "Scanning too fast: wait a moment and scan again"),
    "bad_waybill": ("不是运单号", "Not a waybill number"),
    "preadvice_no_file": ("无法加入预报数据", "Cannot add to the pre-advice"),
    "preadvice_write": ("预报文件无法写入：检查文件权限和磁盘空间", "The pre-advice file cannot be written: check its "
                        "permissions and the disk space"),
    # -- the shift report ---------------------------------------------------------------------
    "report_title": ("班次报表", "Shift report"),
    "period": ("时段", "Period"),
    "throughput_15": ("每15分钟处理量", "Throughput per 15 minutes"),
    "read_rate_15": ("每15分钟读取率", "Read rate per 15 minutes"),
    "per_chute": ("各格口包裹数", "Parcels per chute"),
    "per_courier": ("各快递公司包裹与重量", "Parcels and weight per courier"),
    "weighed": ("已称重", "Weighed"),
    "weight_kg": ("总重 kg", "Weight kg"),
    "mean_kg": ("平均 kg", "Mean kg"),
    "volume_l": ("体积 L", "Volume L"),
    "overweight": ("超重", "Overweight"),
    "oversize": ("超尺寸", "Oversize"),
    "no_courier": ("未识别快递公司", "No courier read"),
    "latency_pct": ("扫描到决策耗时分位数", "Scan-to-decision time percentiles"),
    "total": ("合计", "Total"),
    "no_parcels": ("该时段没有包裹记录", "No parcels recorded in this period"),
    "actions": ("技术员操作记录", "Technician actions"),
    "who": ("操作人", "Who"),
    "when": ("时间", "When"),
    "what": ("操作", "Action"),
}

STATES = {
    # the controller's machine state (edge.state.State values)
    "booting": ("启动中", "Starting"),
    "ready": ("就绪", "Ready"),
    "running": ("运行中", "Running"),
    "paused": ("线体暂停", "Paused"),
    "faulted": ("故障", "Faulted"),
    "e-stop": ("急停", "Emergency stop"),
    "plc-link-lost": ("PLC 连接中断", "PLC link lost"),
}
STATE_LEVEL = {"running": "ok", "booting": "warn", "ready": "warn", "paused": "warn"}   # others: "fault"

REMEDIES = {
    # what to do, by cause; the controller's own sentence (with the exact error) is shown beside it
    "booting": ("正在加载分拣计划和识别模型并连接 PLC，请稍候。",
                "Loading the sort plan and label readers and connecting to the PLC: wait a moment."),
    "ready": ("已连接 PLC，等待线体启动：在 PLC 操作面板上启动皮带。",
              "Connected to the PLC, waiting for the belt: start it from the PLC panel."),
    "paused": ("皮带已停止：在 PLC 操作面板上启动皮带。", "The belt is stopped: start it from the PLC panel."),
    "plc-link-lost": ("检查到 PLC {address} 的网线和 PLC 电源；中断期间包裹进入尾端格口，连接恢复后自动继续分拣。",
                      "Check the cable and power of the PLC at {address}; parcels go to the end chute meanwhile "
                      "and sorting resumes on its own when it answers."),
    "e-stop": ("排除危险后复位急停按钮，再在 PLC 面板上启动皮带。",
               "Clear the danger, release the emergency stop, then restart the belt from the PLC panel."),
    "jam": ("取出卡住的包裹，确认光电无遮挡后在面板上复位并启动皮带。",
            "Remove the jammed parcel, check the photo-eyes are clear, reset and restart the belt from the panel."),
    "line-fault": ("查看 PLC 面板上的故障代码，处理后复位并启动皮带。",
                   "Read the fault code on the PLC panel, fix it, reset and restart the belt."),
    "records": ("包裹记录无法写入磁盘：清理记录文件夹所在磁盘的空间；分拣继续，记录暂存内存。",
                "Parcel records cannot be written: free disk space in the records folder; sorting continues "
                "and records wait in memory."),
    "camera": ("相机没有传来图像，或图像无法解码：检查相机电源、网线和上传文件夹；期间包裹进入无法识别格口。",
               "The camera sends no images, or images that cannot be decoded: check its power, its network and "
               "its upload folder; parcels go to the no-read chute meanwhile."),
    "faulted": ("查看下方说明并处理。", "See the message below."),
}

ALARMS = {
    # titles of the controller's alarm keys (edge/alarms.py); the cause and remedy come with each alarm
    "chute_bits_unknown": ("格口状态位无法识别", "Chute state bits not understood"),
    "plc_numbers_reused": ("PLC 跟踪号重复使用", "PLC reused tracking numbers"),
    "assignment_not_sent": ("格口指令未送达 PLC", "Chute assignment not sent to the PLC"),
    "loop_held": ("控制器处理被阻塞", "Controller held up"),
    "records_corrupt": ("包裹记录文件损坏", "Parcel records damaged"),
    "records_write": ("包裹记录无法写入", "Parcel records cannot be written"),
    "records_backlog": ("包裹记录积压", "Parcel records backlog"),
    "screen_connections": ("监控画面连接过多", "Too many connections to the screen"),
    "camera": ("相机故障", "Camera problem"),
    "not_deciding": ("控制器未对包裹作出决策", "Controller not deciding parcels"),
    "internal_error": ("包裹决策内部错误", "Internal error deciding a parcel"),
    "code_reader_link": ("读码器未连接", "Code reader not connected"),
    "code_reader_silent": ("读码器没有结果", "Code reader sends no results"),
    "code_reader_input": ("读码器数据无法使用", "Code reader data not usable"),
    "scale_link": ("称重设备未连接", "Scale not connected"),
    "scale_input": ("称重数据无法使用", "Scale data not usable"),
    "plan_refused": ("分拣计划未加载", "Sort plan refused"),
    "plan_schedule_refused": ("定时分拣计划未加载", "Scheduled sort plan refused"),
}


REASONS = {
    # decision reasons (fastpath.Reason) and PLC divert results (drivers.regmap.DivertResult)
    "PREADVICE": (("预报数据", "Pre-advice"), None),
    "ROUTING_CODE": (("三段码", "Routing code"), None),
    "COURIER_RULE": (("快递公司默认", "Courier default"), None),
    "COURIER_OVERRIDE": (("快递专用格口", "Courier's own chute"), None),
    "NO_READ": (("未识别", "No read"),
                ("检查面单是否朝上、相机镜头是否干净、光照是否足够；尾端人工补码。",
                 "Check labels face up, the camera lens is clean and the light is on; code these by hand at the end.")),
    "MULTI_READ": (("多个运单号", "Multi read"),
                   ("包裹上有多张面单：尾端人工确认后补码。",
                    "More than one label on the parcel: check it at the end of the line and code it by hand.")),
    "NO_RULE": (("无分拣规则", "No rule"),
                ("分拣计划中没有该目的地：在计划中补充规则后重新加载。",
                 "The sort plan has no rule for this destination: add it to the plan and reload.")),
    "OVERFLOW": (("溢出", "Overflow"),
                 ("目的地的格口都满包、停用或故障：清空满包格口或重新启用格口。",
                  "Every chute of the destination is full, disabled or faulted: empty or re-enable one.")),
    "REJECT": (("剔除", "Reject"),
               ("溢出格口也不可用：尽快清空溢出格口。", "The overflow chute is unavailable too: empty it now.")),
    "DIVERTED": (("已落格", "Diverted"), None),
    "LATE": (("决策超时", "Late decision"),
             ("控制器来不及在分拣点前给出格口：检查读取耗时和 CPU 负载，或降低线速。",
              "The chute came after the decision point: check reading time and CPU load, or lower the belt speed.")),
    "NO_HEARTBEAT": (("控制器心跳丢失", "Controller heartbeat lost"),
                     ("PLC 收不到控制器心跳：检查控制器是否在运行、网线是否连接。",
                      "The PLC lost the controller's heartbeat: check the controller runs and the cable.")),
    "CHUTE_UNAVAILABLE": (("格口不可用", "Chute unavailable"),
                          ("落格时格口已满包、停用或故障：检查该格口。",
                           "The chute was full, disabled or faulted when the parcel arrived: check that chute.")),
    "INVALID_ASSIGNMENT": (("无效格口号", "Invalid chute number"),
                           ("控制器给出的格口不存在：检查线体配置与 PLC 的格口数量一致。",
                            "The chute given does not exist: check the line config matches the PLC's chutes.")),
    "LOST": (("跟踪丢失", "Tracking lost"), ("包裹被取走或卡住：检查皮带。", "Parcel removed or jammed: check the belt.")),
    "OVERWEIGHT": (("超重", "Overweight"),
                   ("超重包裹进入超重格口：人工处理后按计划补码。",
                    "Overweight parcels go to their own chute: handle them by hand and code them.")),
    "OVERSIZE": (("超尺寸", "Oversize"),
                 ("超长包裹进入超尺寸格口，不经摆臂：人工处理。",
                  "Oversize parcels go to their own chute, past the swing arms: handle them by hand.")),
}

SORTED_REASONS = ("PREADVICE", "ROUTING_CODE", "COURIER_RULE", "COURIER_OVERRIDE")
UNREAD_REASONS = ("NO_READ", "MULTI_READ")


def catalogue() -> dict:
    """Everything the page needs to speak both languages, as one JSON-ready object."""
    return {"languages": list(LANGUAGES), "text": TEXT, "states": STATES, "remedies": REMEDIES,
            "reasons": REASONS, "alarms": ALARMS}


def say(key: str, lang: str = "zh", **fields) -> str:
    return TEXT[key][LANGUAGES.index(lang)].format(**fields)


def both(key: str, **fields) -> str:
    """Chinese, then English: for places that show one text to everybody (reports, logs)."""
    zh, en = TEXT[key]
    return f"{zh} {en}".format(**fields)


def reason_name(reason: str, lang: str = "zh") -> str:
    label = REASONS.get(reason, ((reason, reason), None))[0]
    return label[LANGUAGES.index(lang)]
