// Operator console (值班控制台): a dependency-free single page over the REST API.
// Owns presentation only: every decision (permissions, two-person approval, stopping) is the server's,
// and every refusal is shown with the server's own Chinese message. Never builds HTML from strings
// (all text goes through textContent), never stores credentials beyond the page's memory.

const SEVERITY = [
  { value: "red", n: 1, label: "红色", cls: "c1" },
  { value: "orange", n: 2, label: "橙色", cls: "c2" },
  { value: "yellow", n: 3, label: "黄色", cls: "c3" },
  { value: "blue", n: 4, label: "蓝色", cls: "c4" },
];
const SEVERITY_BY_N = Object.fromEntries(SEVERITY.map((s) => [s.n, s]));
const DELIVERY = [
  ["queued", "排队"], ["sent", "已下发"], ["acknowledged", "已确认"], ["playing", "播放中"],
  ["played", "已播完"], ["failed", "失败"], ["offline", "离线"], ["cancelled", "已取消"],
];
const DELIVERY_ZH = Object.fromEntries(DELIVERY);
const SETTLED = new Set(["played", "failed", "cancelled"]);
const LINK_ZH = { online: "在线", offline: "离线", broadcasting: "播出中", fault: "故障" };
const STATE_ZH = {
  received: "已接收", pending_approval: "待审核", rejected: "已驳回", rendering: "制作中",
  broadcasting: "播发中", completed: "已完成", cancelled: "已停止", expired: "已过期", failed: "失败",
};
const REASON_ZH = {
  not_connected: "终端未连接", no_ack: "无应答", rejected: "终端拒绝", playback_failed: "播放失败",
  bad_report: "回传异常", link_lost: "连接中断", expired: "已过有效期", cancelled: "已停止/取消",
  preempted: "被更高级别播发抢占",
};
const STOPPABLE = new Set(["received", "pending_approval", "rendering", "broadcasting"]);
const COMMON_EVENTS = ["11B03", "11A51", "11A01", "11B06", "11B09", "11B04", "11B05", "11C00", "11D00", "12A00", "11E00"];
// Texts offered per event category (the first matching prefix wins); operators edit them freely.
const TEXT_TEMPLATES = [
  ["11B03", "预计未来6小时{area}将出现强降水，请远离河道、低洼地带和山体边坡，注意防范山洪和地质灾害。"],
  ["11A", "{area}可能出现洪水、山洪等水旱灾害，请沿河及低洼地区群众做好转移准备，听从村组干部指挥。"],
  ["11B", "{area}将出现{event}天气，请减少外出，加固门窗和户外设施，注意人身安全。"],
  ["11C", "{area}发生{event}，请保持冷静，迅速到空旷安全地带避险，远离建筑物和电线杆。"],
  ["11D", "{area}存在{event}风险，请立即远离危险区域，按照指定路线有序转移。"],
  ["11E", "{area}发生{event}，请勿进入林区，严禁野外用火，发现火情立即拨打119或12119。"],
  ["", "{area}发生{event}，请注意防范，听从政府和有关部门的统一指挥。"],
];

const S = {
  me: null, csrf: "", areas: null, areaIndex: {}, eventTypes: [], es: null, view: null,
  onUpdate: null, loginPassword: "", pendingTimer: null,
};

// ---------- DOM helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected" || k === "hidden") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (sel, root = document) => root.querySelector(sel);
const main = () => $("#main");

function setMain(...nodes) {
  main().replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function flash(message, kind = "error") {
  const el = $("#flash");
  el.textContent = message;
  el.className = kind === "info" ? "flash info" : "flash";
  el.hidden = !message;
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}月${d.getDate()}日 ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function pct(rate) {
  return `${(rate * 100).toFixed(1)}%`;
}

function sevTag(n) {
  const s = SEVERITY_BY_N[n];
  return h("span", { class: `tag ${s ? s.cls : "c0"}`, text: s ? s.label : "未知" });
}

function can(perm) {
  return Boolean(S.me && S.me.permissions.includes(perm));
}

// ---------- API with a progress indicator for slow requests ----------------------------------------

let busyCount = 0;
let busyTimer = null;

function busyStart(text) {
  busyCount += 1;
  $("#busy-text").textContent = text || "处理中…";
  if (busyTimer === null) busyTimer = setTimeout(() => { $("#busy").hidden = false; }, 400);
}

function busyEnd() {
  busyCount = Math.max(0, busyCount - 1);
  if (busyCount === 0) {
    clearTimeout(busyTimer);
    busyTimer = null;
    $("#busy").hidden = true;
  }
}

async function api(method, url, body, { busyText, quiet } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && S.csrf) headers["X-CSRF-Token"] = S.csrf;
  if (!quiet) busyStart(busyText);
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, status: 0, data: { message: "无法连接服务器，请检查网络后重试" } };
  } finally {
    if (!quiet) busyEnd();
  }
  let data = {};
  try { data = await resp.json(); } catch { data = {}; }
  if (resp.status === 401 && !url.endsWith("/api/login") && !url.endsWith("/api/me")) {
    S.me = null;
    showLogin(data.message || "会话已过期，请重新登录");
  }
  return { ok: resp.ok, status: resp.status, data };
}

// ---------- session ---------------------------------------------------------------------------------

function setMe(me) {
  S.me = me;
  if (me && me.csrf_token) S.csrf = me.csrf_token;
  const signedIn = Boolean(me && !me.must_change_password);
  $("#nav").hidden = !signedIn;
  $("#who").hidden = !me;
  $("#who-name").textContent = me ? me.username : "";
  if (signedIn) startEvents(); else stopEvents();
}

function showLogin(message) {
  setMe(null);
  S.view = "login";
  const user = h("input", { type: "text", id: "login-user", autocomplete: "username", required: true });
  const pass = h("input", { type: "password", id: "login-pass", autocomplete: "current-password", required: true });
  const err = h("p", { class: "flash", id: "login-error", hidden: !message, text: message || "" });
  const form = h("form", { class: "card login", id: "login-form" },
    h("h1", { text: "值班员登录" }),
    h("label", { for: "login-user", text: "用户名" }), user,
    h("label", { for: "login-pass", text: "密码" }), pass,
    err,
    h("div", { class: "row end" }, h("button", { type: "submit", id: "login-submit", text: "登录" })));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/login", { username: user.value.trim(), password: pass.value });
    if (!r.ok) {
      err.textContent = r.data.message || "登录失败，请重试";
      err.hidden = false;
      return;
    }
    S.loginPassword = pass.value;
    setMe(r.data);
    if (r.data.must_change_password) showPasswordChange(true);
    else { S.loginPassword = ""; await afterLogin(); }
  });
  flash("");
  setMain(form);
  user.focus();
}

function showPasswordChange(forced) {
  S.view = "password";
  const cur = h("input", { type: "password", id: "pw-current", autocomplete: "current-password", value: S.loginPassword });
  const nw = h("input", { type: "password", id: "pw-new", autocomplete: "new-password" });
  const again = h("input", { type: "password", id: "pw-again", autocomplete: "new-password" });
  const err = h("p", { class: "flash", id: "pw-error", hidden: true });
  const form = h("form", { class: "card login", id: "pw-form" },
    h("h1", { text: forced ? "首次登录：请修改密码" : "修改密码" }),
    forced ? h("p", { class: "muted", text: "您正在使用一次性密码。修改密码后才能继续操作。" }) : null,
    h("label", { for: "pw-current", text: "当前密码" }), cur,
    h("label", { for: "pw-new", text: "新密码" }), nw,
    h("label", { for: "pw-again", text: "再次输入新密码" }), again,
    err,
    h("div", { class: "row end" }, h("button", { type: "submit", id: "pw-submit", text: "修改密码" })));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (nw.value !== again.value) {
      err.textContent = "两次输入的新密码不一致，请重新输入";
      err.hidden = false;
      return;
    }
    const r = await api("POST", "/api/password", { current_password: cur.value, new_password: nw.value });
    if (!r.ok) {
      err.textContent = r.data.message || "修改失败，请重试";
      err.hidden = false;
      return;
    }
    S.loginPassword = "";
    const me = await api("GET", "/api/me", undefined, { quiet: true });
    if (me.ok) setMe(me.data);
    flash("密码已修改", "info");
    await afterLogin();
  });
  setMain(form);
  cur.value ? nw.focus() : cur.focus();
}

async function afterLogin() {
  await loadReference();
  refreshPendingCount();
  clearInterval(S.pendingTimer);
  S.pendingTimer = setInterval(refreshPendingCount, 20000);
  if (!location.hash || location.hash === "#/" || location.hash === "#/login") location.hash = "#/compose";
  else route();
}

async function loadReference() {
  if (S.areas) return;
  const [a, e] = await Promise.all([api("GET", "/api/areas"), api("GET", "/api/event-types")]);
  if (a.ok) {
    S.areas = a.data.county;
    const walk = (node, street) => {
      S.areaIndex[node.code] = { node, street: node.level === "street" ? node : street };
      for (const c of node.children) walk(c, node.level === "street" ? node : street);
    };
    walk(S.areas, null);
  }
  if (e.ok) S.eventTypes = e.data.event_types;
}

async function refreshPendingCount() {
  if (!S.me) return;
  const r = await api("GET", "/api/pending", undefined, { quiet: true });
  if (!r.ok) return;
  const el = $("#pending-count");
  el.textContent = String(r.data.pending.length);
  el.hidden = r.data.pending.length === 0;
}

// ---------- live events ---------------------------------------------------------------------------

function startEvents() {
  if (S.es) return;
  const live = $("#live");
  const es = new EventSource("/api/events");
  S.es = es;
  es.addEventListener("hello", () => { live.textContent = "实时：已连接"; live.className = "live on"; });
  es.addEventListener("update", (ev) => {
    const msg = JSON.parse(ev.data);
    if (S.onUpdate) S.onUpdate(msg);
  });
  es.onerror = () => { live.textContent = "实时：重连中…"; live.className = "live off"; };
}

function stopEvents() {
  if (S.es) { S.es.close(); S.es = null; }
  const live = $("#live");
  live.textContent = "实时：未连接";
  live.className = "live off";
}

// ---------- router --------------------------------------------------------------------------------

async function route() {
  if (!S.me) return showLogin();
  if (S.me.must_change_password) return showPasswordChange(true);
  S.onUpdate = null;
  const [, view, arg] = (location.hash || "#/compose").split("/");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  S.view = view;
  const views = { compose: viewCompose, pending: viewPending, board: viewBoard, broadcasts: viewBroadcasts,
    terminals: viewTerminals, sources: viewSources, password: () => showPasswordChange(false) };
  await (views[view] || viewCompose)(arg);
}

// ---------- compose -------------------------------------------------------------------------------

function randomId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function areaTree(onChange) {
  const boxes = [];
  function node(n, depth) {
    const box = h("input", { type: "checkbox", "data-code": n.code, "aria-label": n.name });
    boxes.push(box);
    const li = h("li", {});
    const kids = n.children.length ? h("ul", { hidden: depth >= 1 }) : null;
    const toggle = n.children.length
      ? h("button", { type: "button", class: "toggle", "aria-label": `展开${n.name}`, text: depth >= 1 ? "＋" : "－",
        onclick: () => { kids.hidden = !kids.hidden; toggle.textContent = kids.hidden ? "＋" : "－"; } })
      : h("span", { class: "toggle" });
    li.append(toggle, h("label", { class: "inline" }, box, n.name, h("span", { class: "count", text: ` ${n.terminals}台` })));
    if (kids) {
      for (const c of n.children) kids.append(node(c, depth + 1));
      li.append(kids);
    }
    box._node = n;
    box._kids = () => (kids ? Array.from(kids.children, (k) => k.querySelector(":scope > label > input")) : []);
    box.addEventListener("change", () => {
      const setDown = (b, v) => { b.checked = v; b.indeterminate = false; for (const k of b._kids()) setDown(k, v); };
      setDown(box, box.checked);
      refreshUp();
      onChange();
    });
    return li;
  }
  function refreshUp() {
    // Parents reflect their children: all → checked, some → indeterminate.
    for (const b of [...boxes].reverse()) {
      const kids = b._kids();
      if (!kids.length) continue;
      const all = kids.every((k) => k.checked);
      const some = kids.some((k) => k.checked || k.indeterminate);
      b.checked = all;
      b.indeterminate = !all && some;
    }
  }
  const root = h("div", { class: "tree", id: "area-tree" }, h("ul", {}, node(S.areas, 0)));
  root.selected = () => {
    const out = [];
    const walk = (b) => { if (b.checked) out.push(b._node); else for (const k of b._kids()) walk(k); };
    walk(boxes[0]);
    return out;
  };
  return root;
}

function eventName(code) {
  const e = S.eventTypes.find((x) => x.code === code);
  return e ? e.name : code;
}

function templateFor(code, sevValue, areas) {
  const sev = SEVERITY.find((s) => s.value === sevValue);
  const county = S.areas ? S.areas.name : "";
  const area = areas.length === 0 ? county : areas.length <= 3 ? areas.map((a) => a.name).join("、") : `${areas[0].name}等${areas.length}地`;
  const ev = eventName(code);
  const text = TEXT_TEMPLATES.find(([p]) => code.startsWith(p))[1];
  return {
    title: `${county}发布${ev}${sev ? sev.label : ""}预警`,
    text: text.replaceAll("{area}", area).replaceAll("{event}", ev),
  };
}

async function viewCompose() {
  if (!S.areas) await loadReference();
  if (!can("messages:submit")) {
    setMain(h("div", { class: "card" }, h("h1", { text: "发布预警" }),
      h("p", { text: "当前账号没有编写预警的权限（需要操作员角色）。审核员请前往“待审核”。" })));
    return;
  }
  let clientId = randomId();
  let edited = false;
  const msgType = h("select", { id: "msg-type" }, h("option", { value: "actual", text: "实际播发" }), h("option", { value: "drill", text: "演练" }));
  const common = h("optgroup", { label: "常用" });
  const all = h("optgroup", { label: "全部事件类型" });
  for (const code of COMMON_EVENTS) if (S.eventTypes.some((e) => e.code === code)) common.append(h("option", { value: code, text: `${eventName(code)}（${code}）` }));
  for (const e of S.eventTypes) all.append(h("option", { value: e.code, text: `${e.name}（${e.code}）` }));
  const eventSel = h("select", { id: "event-type" }, common, all);
  eventSel.value = "11B03";
  const sev = h("div", { class: "sev", role: "radiogroup", "aria-label": "预警级别" },
    SEVERITY.map((s, i) => h("label", {}, h("input", { type: "radio", name: "severity", value: s.value, checked: i === 1 }),
      h("span", { class: s.cls, text: s.label }))));
  const hours = h("select", { id: "valid-hours" }, [1, 2, 3, 6, 12, 24, 48].map((n) => h("option", { value: n, text: `${n} 小时`, selected: n === 6 })));
  const title = h("input", { type: "text", id: "title", maxlength: 200 });
  const text = h("textarea", { id: "text", maxlength: 4000 });
  const chosen = h("p", { class: "muted small", id: "area-summary", text: "尚未选择区域" });
  const tree = areaTree(() => { summarise(); fill(false); });
  const player = h("div", { id: "preview-box" });
  const result = h("div", { id: "compose-result" });

  const severity = () => sev.querySelector("input:checked").value;
  function summarise() {
    const sel = tree.selected();
    const n = sel.reduce((a, x) => a + x.terminals, 0);
    chosen.textContent = sel.length ? `已选：${sel.map((x) => x.name).join("、")}（共 ${n} 台终端）` : "尚未选择区域";
  }
  function fill(force) {
    if (edited && !force) return;
    const t = templateFor(eventSel.value, severity(), tree.selected());
    title.value = t.title;
    text.value = t.text;
    edited = false;
  }
  for (const el of [title, text]) el.addEventListener("input", () => { edited = true; clientId = randomId(); });
  eventSel.addEventListener("change", () => fill(false));
  sev.addEventListener("change", () => fill(false));

  async function preview() {
    player.replaceChildren(h("div", { class: "preview-status" }, h("span", { class: "spinner dark" }), "正在合成语音，请稍候…"));
    const r = await api("POST", "/api/preview", { title: title.value, text: text.value }, { busyText: "正在合成语音…" });
    if (!r.ok) { player.replaceChildren(h("p", { class: "flash", text: r.data.message || "试听失败" })); return; }
    player.replaceChildren(
      h("p", { class: "muted small", text: `试听音频：${r.data.duration_s.toFixed(1)} 秒（${r.data.engine || "语音合成"}）` }),
      h("audio", { controls: true, src: r.data.url, id: "preview-audio", preload: "auto" }));
  }

  async function submit(ev) {
    ev.preventDefault();
    const areas = tree.selected();
    if (!areas.length) { flash("请至少选择一个播发区域"); return; }
    if (!title.value.trim() || !text.value.trim()) { flash("请填写标题和正文"); return; }
    const now = new Date();
    const end = new Date(now.getTime() + Number(hours.value) * 3600e3);
    const doc = {
      msg_type: msgType.value, event_type: eventSel.value, severity: severity(), title: title.value.trim(),
      text: text.value.trim(), areas: areas.map((a) => a.code), end: end.toISOString().replace(/\.\d+Z$/, "+00:00"),
      sender: S.me.username, client_id: clientId,
    };
    const r = await api("POST", "/api/messages", doc, { busyText: "正在提交…" });
    if (!r.ok) { flash(r.data.message || "提交失败，请检查后重试"); return; }
    flash("");
    clientId = randomId();
    const id = r.data.broadcast_id;
    result.replaceChildren(h("div", { class: "flash info", id: "submitted" },
      `已提交（编号 ${id}，${r.data.targets} 台终端）：${r.data.message || ""}`, " ",
      h("a", { href: "#/pending", text: "查看待审核" }), " · ", h("a", { href: `#/board/${id}`, text: "播发进度" })));
    refreshPendingCount();
  }

  const form = h("form", { class: "card", id: "compose-form" },
    h("h1", { text: "发布预警" }),
    h("div", { class: "grid2" },
      h("div", {},
        h("label", { for: "msg-type", text: "播发类型" }), msgType,
        h("label", { for: "event-type", text: "事件类型" }), eventSel,
        h("label", { text: "预警级别" }), sev,
        h("label", { for: "valid-hours", text: "有效时长" }), hours),
      h("div", {},
        h("label", { text: "播发区域（县 → 街道 → 村/社区）" }), tree, chosen)),
    h("label", { for: "title", text: "标题" }), title,
    h("label", { for: "text", text: "播报正文" }), text,
    h("div", { class: "row", id: "compose-actions" },
      h("button", { type: "button", class: "secondary", text: "套用模板", onclick: () => fill(true) }),
      h("button", { type: "button", class: "secondary", id: "preview-btn", text: "试听", onclick: preview }),
      h("button", { type: "submit", id: "submit-btn", text: "提交审核" })),
    player, result,
    h("p", { class: "muted small", text: "提交后须由另一名审核员批准才会播出（双人审核）。" }));
  form.addEventListener("submit", submit);
  setMain(form);
  fill(true);
}

// ---------- pending -------------------------------------------------------------------------------

async function viewPending() {
  const r = await api("GET", "/api/pending");
  if (!r.ok) { setMain(h("p", { class: "flash", text: r.data.message || "读取失败" })); return; }
  const items = r.data.pending;
  refreshPendingCount();
  async function act(item, verb) {
    if (verb === "reject" && !(await confirmDialog(`确定驳回「${item.title}」？驳回后不会播出。`))) return;
    const res = await api("POST", `/api/broadcasts/${item.broadcast_id}/${verb}`, {}, { busyText: "正在处理…" });
    if (!res.ok) { flash(res.data.message || "操作失败"); return; }
    flash(res.data.message || "已处理", "info");
    if (verb === "reject") await viewPending();
    else location.hash = `#/board/${item.broadcast_id}`;
  }
  const list = items.map((it) => h("div", { class: "card pending-item", "data-id": it.broadcast_id },
    h("h3", {}, sevTag(it.severity), " ", it.title),
    h("p", { class: "small muted" },
      `编号 ${it.broadcast_id} · 编写人 ${it.composer || "—"} · 接收 ${fmtTime(it.received_at)}`,
      it.kind === "hold_off" ? ` · 暂缓至 ${fmtTime(it.hold_until)}（超时${it.on_timeout === "send" ? "自动播出" : "自动放弃"}）` : ""),
    it.composer === S.me.username ? h("p", { class: "small", text: "这是您编写的消息，须由另一名审核员批准。" }) : null,
    h("div", { class: "row" },
      it.kind === "approval"
        ? h("button", { type: "button", class: "ok", "data-act": "approve", text: "批准播发", onclick: () => act(it, "approve") })
        : h("button", { type: "button", class: "ok", "data-act": "release", text: "立即放行", onclick: () => act(it, "release") }),
      h("button", { type: "button", class: "danger", "data-act": "reject", text: "驳回", onclick: () => act(it, "reject") }),
      h("a", { href: `#/board/${it.broadcast_id}`, text: "详情" }))));
  setMain(h("h1", { text: "待审核 / 待放行" }),
    items.length ? h("div", { id: "pending-list" }, list) : h("p", { class: "muted", id: "pending-empty", text: "没有待处理的消息" }));
}

function confirmDialog(message) {
  const dlg = $("#confirm");
  $("#confirm-text").textContent = message;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

// ---------- live progress board -------------------------------------------------------------------

async function viewBoard(arg) {
  const id = Number(arg);
  const r = await api("GET", `/api/broadcasts/${id}?deliveries=1`);
  if (!r.ok) { setMain(h("p", { class: "flash", text: r.data.message || "读取失败" })); return; }
  let b = r.data;
  const status = new Map(b.deliveries.map((d) => [d.terminal, d.status]));
  const areaOf = new Map(b.deliveries.map((d) => [d.terminal, d.area_code]));
  const head = h("div", { class: "card", id: "board-head" });
  const body = h("div", { id: "board-body" });

  function renderHead() {
    const stop = STOPPABLE.has(b.state) && can("broadcast:stop")
      ? h("button", { type: "button", class: "danger", id: "stop-btn", text: "停止播发", onclick: stopIt }) : null;
    head.replaceChildren(
      h("h1", { class: "word" }, sevTag(b.severity), " ", b.title),
      h("p", { class: "small" }, "状态：", h("span", { class: "state", id: "board-state", "data-state": b.state, text: STATE_ZH[b.state] || b.state }),
        ` · 编号 ${b.id} · ${b.msg_type === "drill" ? "演练 · " : ""}接收 ${fmtTime(b.received_at)} · 结束 ${fmtTime(b.end_at)}`),
      h("p", { class: "small muted" }, "到播时延：",
        b.time_to_air && b.time_to_air.count ? `中位 ${(b.time_to_air.p50_ms / 1000).toFixed(2)} 秒，P95 ${(b.time_to_air.p95_ms / 1000).toFixed(2)} 秒` : "—"),
      h("div", { class: "row" }, stop,
        h("a", { href: `/api/reports/broadcast/${b.id}`, target: "_blank", rel: "noopener", id: "report-link", text: "效果评估报告" }),
        h("a", { href: `#/broadcasts`, text: "返回播发记录" })));
  }

  function renderBody() {
    const counts = Object.fromEntries(DELIVERY.map(([k]) => [k, 0]));
    const streets = new Map();
    for (const [code, st] of status) {
      counts[st] = (counts[st] || 0) + 1;
      const a = S.areaIndex[areaOf.get(code)];
      const street = a && a.street ? a.street : { code: "?", name: "其他" };
      const row = streets.get(street.code) || { name: street.name, n: 0, played: 0, playing: 0, failed: 0 };
      row.n += 1;
      if (st === "played") row.played += 1;
      if (st === "playing") row.playing += 1;
      if (st === "failed" || st === "offline") row.failed += 1;
      streets.set(street.code, row);
    }
    const n = status.size;
    const rate = n ? counts.played / n : 0;
    const tiles = DELIVERY.map(([k, zh]) => h("div", { class: `tile ${k === "played" ? "played" : ""} ${["failed", "offline"].includes(k) && counts[k] ? "bad" : ""}`, "data-status": k },
      h("b", { text: counts[k] }), zh));
    const failures = b.failure_reasons || {};
    const cells = Array.from(status, ([code, st]) => {
      const a = S.areaIndex[areaOf.get(code)];
      return h("span", { class: `cell s-${st}`, title: `${a ? a.node.name : ""} ${code}：${DELIVERY_ZH[st] || st}` });
    });
    body.replaceChildren(...[
      h("div", { class: "card" },
        h("p", { id: "coverage", "data-played": counts.played, "data-targeted": n },
          h("b", { text: `已播完 ${counts.played}/${n}` }), `（覆盖率 ${pct(rate)}）`),
        h("div", { class: "bar" }, (() => { const d = h("div", {}); d.style.width = `${(rate * 100).toFixed(1)}%`; return d; })()),
        h("div", { class: "tiles", id: "tiles" }, tiles)),
      Object.keys(failures).length
        ? h("div", { class: "card" }, h("h2", { text: "失败原因" }),
          h("ul", {}, Object.entries(failures).map(([k, v]) => h("li", { text: `${REASON_ZH[k] || k}：${v} 台` }))))
        : null,
      h("div", { class: "card" }, h("h2", { text: "分街道进度" }),
        h("div", { class: "scroll" }, h("table", { id: "street-table" },
          h("tr", {}, ["街道", "终端", "播放中", "已播完", "失败/离线", "覆盖率"].map((t, i) => h("th", { class: i ? "n" : "", text: t }))),
          Array.from(streets.values(), (s) => h("tr", {}, h("td", { text: s.name }), h("td", { class: "n", text: s.n }),
            h("td", { class: "n", text: s.playing }), h("td", { class: "n", text: s.played }), h("td", { class: "n", text: s.failed }),
            h("td", { class: "n", text: pct(s.n ? s.played / s.n : 0) })))))),
      h("div", { class: "card" }, h("h2", { text: "终端" }),
        h("div", { class: "legend" }, DELIVERY.map(([k, zh]) => h("span", {}, h("span", { class: `cell s-${k}` }), zh))),
        h("div", { class: "cells", id: "cells" }, cells)),
    ].filter(Boolean));
  }

  let refetchTimer = null;
  async function refetch() {
    refetchTimer = null;
    const rr = await api("GET", `/api/broadcasts/${id}?deliveries=1`, undefined, { quiet: true });
    if (!rr.ok || S.view !== "board") return;
    b = rr.data;
    for (const d of b.deliveries) status.set(d.terminal, d.status);
    renderHead();
    renderBody();
  }
  function scheduleRefetch(ms) {
    if (refetchTimer === null) refetchTimer = setTimeout(refetch, ms);
  }

  async function stopIt() {
    if (!(await confirmDialog(`确定停止播发「${b.title}」？正在播放的终端将立即停播，此操作不可撤销。`))) return;
    const res = await api("POST", `/api/broadcasts/${id}/stop`, {}, { busyText: "正在停止…" });
    if (!res.ok) { flash(res.data.message || "停止失败"); return; }
    flash(`已停止播发，已向 ${res.data.stop_instructions} 台终端发送停播指令`, "info");
    await refetch();
  }

  S.onUpdate = (msg) => {
    if (msg.resync) { scheduleRefetch(0); return; }
    const mine = msg.deliveries[String(id)];
    if (!mine) return;
    for (const [code, st] of Object.entries(mine)) status.set(code, st);
    renderBody();
    // State, time-to-air and failure reasons come from the server, at most once a second.
    const settled = Array.from(status.values()).every((s) => SETTLED.has(s));
    scheduleRefetch(settled ? 300 : 1000);
  };
  renderHead();
  renderBody();
  setMain(head, body);
  if (!["completed", "cancelled", "expired", "failed", "rejected"].includes(b.state)) scheduleRefetch(1500);
  const poll = setInterval(() => {
    if (S.view !== "board") { clearInterval(poll); return; }
    if (["completed", "cancelled", "expired", "failed", "rejected"].includes(b.state)) return;
    scheduleRefetch(0);
  }, 3000);
}

// ---------- broadcasts history ---------------------------------------------------------------------

async function viewBroadcasts() {
  const r = await api("GET", "/api/broadcasts?limit=200");
  if (!r.ok) { setMain(h("p", { class: "flash", text: r.data.message || "读取失败" })); return; }
  const rows = r.data.broadcasts.map((b) => h("tr", { "data-id": b.id },
    h("td", { class: "n", text: b.id }),
    h("td", { class: "word" }, h("a", { href: `#/board/${b.id}`, text: b.title })),
    h("td", {}, sevTag(b.severity)),
    h("td", { text: (STATE_ZH[b.state] || b.state) + (b.msg_type === "drill" ? "（演练）" : "") }),
    h("td", { text: fmtTime(b.received_at) }),
    h("td", {}, h("a", { href: `/api/reports/broadcast/${b.id}`, target: "_blank", rel: "noopener", text: "报告" }))));
  setMain(h("h1", { text: "播发记录" }),
    h("div", { class: "scroll card" }, h("table", { id: "broadcasts-table" },
      h("tr", {}, ["编号", "标题", "级别", "状态", "接收时间", "效果"].map((t) => h("th", { text: t }))), rows)));
}

// ---------- terminals -----------------------------------------------------------------------------

async function viewTerminals() {
  if (!S.areas) await loadReference();
  const r = await api("GET", "/api/terminals");
  if (!r.ok) { setMain(h("p", { class: "flash", text: r.data.message || "读取失败" })); return; }
  const terms = r.data.terminals;
  const byCode = new Map(terms.map((t) => [t.resource_code, t]));
  const stateSel = h("select", { id: "t-state" }, h("option", { value: "", text: "全部状态" }),
    Object.entries(LINK_ZH).map(([k, v]) => h("option", { value: k, text: v })));
  const areaSel = h("select", { id: "t-area" }, h("option", { value: "", text: `全${S.areas.name}` }),
    S.areas.children.map((s) => h("option", { value: s.code, text: s.name })));
  const search = h("input", { type: "search", id: "t-search", placeholder: "按名称或编码搜索" });
  const summary = h("p", { class: "small", id: "t-summary" });
  const tree = h("div", { class: "tree", id: "t-tree" });
  const list = h("div", { class: "scroll" });
  const LIMIT = 300;

  function inArea(t, code) {
    if (!code) return true;
    const a = S.areaIndex[t.area_code];
    return t.area_code === code || Boolean(a && a.street && a.street.code === code);
  }
  function render() {
    const counts = { online: 0, offline: 0, broadcasting: 0, fault: 0 };
    for (const t of terms) counts[t.link_state] = (counts[t.link_state] || 0) + 1;
    summary.replaceChildren(`共 ${terms.length} 台：`, ...Object.entries(LINK_ZH).map(([k, v]) =>
      h("span", { class: `l-${k}`, text: ` ${v} ${counts[k] || 0} ` })));
    const q = search.value.trim();
    const shown = terms.filter((t) => (!stateSel.value || t.link_state === stateSel.value) && inArea(t, areaSel.value)
      && (!q || t.name.includes(q) || t.resource_code.includes(q)));
    list.replaceChildren(...[h("table", { id: "t-table" },
      h("tr", {}, ["名称", "区域", "链路", "最后在线", "编码"].map((t) => h("th", { text: t }))),
      shown.slice(0, LIMIT).map((t) => h("tr", { "data-code": t.resource_code },
        h("td", { class: "word", text: t.name }),
        h("td", { text: S.areaIndex[t.area_code] ? S.areaIndex[t.area_code].node.name : t.area_code }),
        h("td", { class: `l-${t.link_state}`, text: LINK_ZH[t.link_state] || t.link_state }),
        h("td", { text: fmtTime(t.last_seen) }),
        h("td", { class: "small word", text: t.resource_code })))),
      shown.length > LIMIT ? h("p", { class: "muted small", text: `仅显示前 ${LIMIT} 台（共 ${shown.length} 台），请用筛选缩小范围` }) : null,
    ].filter(Boolean));
    // Tree: per street and village, online / total.
    const agg = new Map();
    for (const t of terms) {
      const a = S.areaIndex[t.area_code];
      for (const code of new Set([t.area_code, a && a.street ? a.street.code : null])) {
        if (!code) continue;
        const x = agg.get(code) || { on: 0, n: 0 };
        x.n += 1;
        if (t.link_state === "online" || t.link_state === "broadcasting") x.on += 1;
        agg.set(code, x);
      }
    }
    const label = (n) => { const x = agg.get(n.code) || { on: 0, n: 0 }; return `${n.name} ${x.on}/${x.n}`; };
    tree.replaceChildren(h("ul", {}, S.areas.children.map((s) => {
      const kids = h("ul", { hidden: areaSel.value !== s.code }, s.children.map((v) =>
        h("li", {}, h("button", { type: "button", class: "link", text: label(v),
          onclick: () => { areaSel.value = s.code; search.value = v.name; render(); } }))));
      return h("li", {}, h("button", { type: "button", class: "toggle", text: "▸",
        onclick: () => { kids.hidden = !kids.hidden; } }),
      h("button", { type: "button", class: "link", text: label(s), onclick: () => { areaSel.value = s.code; search.value = ""; render(); } }), kids);
    })));
  }
  for (const el of [stateSel, areaSel]) el.addEventListener("change", render);
  search.addEventListener("input", render);
  let timer = null;
  S.onUpdate = (msg) => {
    if (msg.resync) { viewTerminals(); return; }
    let changed = false;
    for (const [code, st] of Object.entries(msg.links)) {
      const t = byCode.get(code);
      if (t) { t.link_state = st; t.last_seen = new Date().toISOString(); changed = true; }
    }
    if (changed && timer === null) timer = setTimeout(() => { timer = null; render(); }, 500);
  };
  setMain(h("h1", { text: "终端" }),
    h("div", { class: "card" }, h("div", { class: "row" }, areaSel, stateSel, search), summary),
    h("div", { class: "grid2" }, h("div", { class: "card" }, h("h2", { text: "区域（在线/总数）" }), tree),
      h("div", { class: "card" }, h("h2", { text: "终端列表" }), list)));
  render();
}

// ---------- sources, adapters, interconnect -------------------------------------------------------

async function viewSources() {
  const [s, a, ic] = await Promise.all([
    api("GET", "/api/sources"), api("GET", "/api/adapters"), api("GET", "/api/interconnect/status", undefined, { quiet: true }),
  ]);
  const feeds = s.ok ? s.data.feeds : [];
  const FEED_ZH = { ok: "正常", error: "异常", pending: "等待首次获取" };
  const feedTable = feeds.length
    ? h("div", { class: "scroll" }, h("table", { id: "feeds-table" },
      h("tr", {}, ["名称", "状态", "最近成功", "连续失败", "已提交/重复/拒收", "最近错误"].map((t) => h("th", { text: t }))),
      feeds.map((f) => h("tr", {}, h("td", { class: "word", text: f.name }),
        h("td", { class: f.status === "ok" ? "l-online" : f.status === "error" ? "l-fault" : "", text: FEED_ZH[f.status] || f.status }),
        h("td", { text: fmtTime(f.last_success) }), h("td", { class: "n", text: f.consecutive_errors }),
        h("td", { class: "n", text: `${f.items_submitted}/${f.items_duplicate}/${f.items_rejected}` }),
        h("td", { class: "word small", text: f.last_error ? f.last_error.message : "—" })))))
    : h("p", { class: "muted", text: "未配置预警信息源（[feeds]）" });
  const adapters = a.ok ? a.data.adapters : [];
  const ADAPTER_ZH = { running: "运行中", stopped: "已停止", failed: "故障", starting: "启动中" };
  const adapterTable = h("div", { class: "scroll" }, h("table", { id: "adapters-table" },
    h("tr", {}, ["适配器", "状态", "详情"].map((t) => h("th", { text: t }))),
    adapters.map((x) => h("tr", {}, h("td", { text: x.name }),
      h("td", { class: x.state === "running" ? "l-online" : "l-fault", text: ADAPTER_ZH[x.state] || x.state }),
      h("td", { class: "small word", text: x.error || (x.status ? JSON.stringify(x.status) : "") })))));
  const icBox = ic.ok
    ? h("pre", { class: "small word", id: "interconnect", text: JSON.stringify(ic.data, null, 2) })
    : h("p", { class: "muted", text: "未配置上级平台对接" });
  setMain(h("h1", { text: "信号源与适配器" }),
    h("div", { class: "card" }, h("h2", { text: "预警信息源" }), feedTable),
    h("div", { class: "card" }, h("h2", { text: "终端适配器" }), adapterTable),
    h("div", { class: "card" }, h("h2", { text: "上级平台对接" }), icBox));
}

// ---------- boot ----------------------------------------------------------------------------------

async function boot() {
  $("#logout").addEventListener("click", async () => {
    await api("POST", "/api/logout", {});
    clearInterval(S.pendingTimer);
    S.loginPassword = "";
    showLogin("已退出登录");
    location.hash = "#/login";
  });
  window.addEventListener("hashchange", () => { flash(""); route(); });
  const r = await api("GET", "/api/me", undefined, { quiet: true });
  if (r.ok && r.data.kind === "user") {
    setMe(r.data);
    await afterLogin();
  } else if (r.status === 403 && r.data.error === "password_change_required") {
    showLogin("请用一次性密码重新登录，然后修改密码");
  } else {
    showLogin(r.status === 401 ? "" : r.data.message);
  }
}

boot();
