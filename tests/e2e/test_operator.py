"""A base's operator: sees today's sessions with their bookings, checks a group in at the
gate by its code (a wrong code is named beside the field), and edits an exhibit someone
else changed meanwhile without overwriting their change."""

import datetime as dt

from conftest import PHONE, check_accessibility, login, screenshots


def test_the_operator_checks_a_group_in_at_the_gate(page, api):
    operator = api("operator-demo")
    school = api("school-demo")
    base_id = operator.call("GET", "/v1/me")["base_ids"][0]
    school_id = school.call("GET", "/v1/me")["school_id"]
    # A visit starting within the hour: its check-in is open.
    now = dt.datetime.now(dt.timezone.utc)
    starts = (now + dt.timedelta(minutes=50)).replace(microsecond=0)
    session = operator.call("POST", f"/v1/bases/{base_id}/sessions", {
        "starts_at": starts.isoformat(), "ends_at": (starts + dt.timedelta(minutes=90)).isoformat(),
        "capacity": 80, "audiences": ["junior"],
        "booking_opens_at": (now - dt.timedelta(minutes=1)).replace(microsecond=0).isoformat(),
        "booking_closes_at": (starts - dt.timedelta(minutes=5)).isoformat(),
    }, expect=201)
    booking = school.call("POST", "/v1/bookings", {
        "session_id": session["id"], "school_id": school_id, "students": 30, "teachers": 2,
        "audience": "junior", "contact_name": "李老师", "contact_phone": "020-1234 5678",
    }, expect=201)

    login(page, "operator-demo")
    card = page.locator(f"li[data-session='{session['id']}']")
    card.wait_for()
    assert "李老师" in card.inner_text()
    check_accessibility(page, "today's sessions")
    screenshots(page, "operator-today")

    page.set_viewport_size(PHONE)
    page.get_by_role("link", name="入园核验").click()
    page.get_by_label("核验码").fill("ZZZZZZ")
    page.get_by_label("实到学生").fill("28")
    page.get_by_label("实到教师").fill("2")
    page.get_by_role("button", name="核验入园").click()
    error = page.locator("#" + page.get_by_label("核验码").get_attribute("id") + "-error")
    error.wait_for()
    assert "code" in error.inner_text() or "核验" in error.inner_text()
    assert page.get_by_label("核验码").get_attribute("aria-invalid") == "true"

    page.get_by_label("核验码").fill(booking["code"].lower())
    page.get_by_role("button", name="核验入园").click()
    page.get_by_text(f"{booking['code']} 核验成功").wait_for()
    check_accessibility(page, "gate")
    screenshots(page, "operator-gate")
    held = operator.call("GET", f"/v1/bookings/{booking['id']}")
    assert (held["status"], held["students_present"], held["teachers_present"]) == ("checked_in", 28, 2)


def test_two_operators_edit_one_exhibit_and_neither_change_is_lost(open_page, api):
    operator = api("operator-demo")
    base_id = operator.call("GET", "/v1/me")["base_ids"][0]
    exhibit = operator.call("GET", f"/v1/bases/{base_id}/exhibits?limit=1")["items"][0]
    first, second = open_page(), open_page()
    for p in (first, second):
        login(p, "operator-demo")
        p.get_by_role("link", name="展品").click()
        card = p.locator(f"li[data-exhibit='{exhibit['id']}']")
        card.locator("summary", has_text="编辑").click()
        card.get_by_label("名称").wait_for()

    one = first.locator(f"li[data-exhibit='{exhibit['id']}']")
    one.get_by_label("名称").fill("新名称：磁悬浮列车")
    one.get_by_role("button", name="保存").click()
    one.get_by_text("已保存").wait_for()

    two = second.locator(f"li[data-exhibit='{exhibit['id']}']")
    two.get_by_label("展厅").fill("二号展厅")
    two.get_by_role("button", name="保存").click()
    two.get_by_text("其他人修改了").wait_for()
    table = two.locator("table.diff")
    rows = table.locator("tbody tr")
    assert rows.count() == 2, table.inner_text()
    assert "新名称：磁悬浮列车" in rows.nth(0).inner_text() and "（未改动）" in rows.nth(0).inner_text()
    assert "二号展厅" in rows.nth(1).inner_text() and "（未改动）" in rows.nth(1).inner_text()
    check_accessibility(second, "edit conflict")
    screenshots(second, "operator-exhibit-conflict")
    two.get_by_role("button", name="保存我的修改").click()
    two.get_by_text("您的修改已加在对方的版本上").wait_for()

    now = operator.call("GET", f"/v1/exhibits/{exhibit['id']}")
    assert now["name"] == "新名称：磁悬浮列车" and now["hall"] == "二号展厅", now


def test_the_operator_makes_closes_reopens_and_cancels_sessions(page, api):
    operator = api("operator-demo")
    base_id = operator.call("GET", "/v1/me")["base_ids"][0]
    city = dt.timezone(dt.timedelta(hours=8))
    day = (dt.datetime.now(city) + dt.timedelta(days=3)).date()

    login(page, "operator-demo")
    one = page.locator("form", has=page.get_by_role("button", name="创建场次"))
    one.get_by_label("日期").fill(str(day))
    one.get_by_label("开始时间").fill("16:30")
    one.get_by_label("结束时间").fill("17:30")
    one.get_by_label("可接待人数").fill("40")
    one.get_by_role("button", name="创建场次").click()
    page.locator(".notice.success", has_text="的场次").wait_for()
    q = f"/v1/sessions?base_id={base_id}&any_status=true&from={day}T16:00:00%2B08:00&to={day}T17:00:00%2B08:00"
    made = operator.call("GET", q)["items"]
    assert len(made) == 1 and made[0]["capacity"] == 40 and made[0]["audiences"] == ["junior"], made
    card = page.locator(f"li[data-session='{made[0]['id']}']")

    card.get_by_role("button", name="停止预约").click()
    page.locator(".notice.success", has_text="已停止接受新预约").wait_for()
    assert operator.call("GET", f"/v1/sessions/{made[0]['id']}")["status"] == "closed"
    card.get_by_role("button", name="重新开放").click()
    page.locator(".notice.success", has_text="已重新开放预约").wait_for()
    assert operator.call("GET", f"/v1/sessions/{made[0]['id']}")["status"] == "open"
    card.locator("summary", has_text="取消场次").click()
    card.get_by_label("取消原因（将通知学校）").fill("设备检修")
    card.get_by_role("button", name="确认取消场次").click()
    page.locator(".notice.success", has_text="场次已取消").wait_for()
    assert operator.call("GET", f"/v1/sessions/{made[0]['id']}")["status"] == "cancelled"
    assert "已取消" in card.inner_text(), "a cancelled session stays in the schedule"

    # Two weeks of Monday and Wednesday evenings.
    first = day + dt.timedelta(days=7)
    weekly = page.locator("form", has=page.get_by_role("button", name="批量创建"))
    weekly.get_by_label("起始日期").fill(str(first))
    weekly.get_by_label("截止日期").fill(str(first + dt.timedelta(days=13)))
    weekly.get_by_label("开始时间").fill("16:30")
    weekly.get_by_label("结束时间").fill("17:30")
    weekly.get_by_role("button", name="批量创建").click()
    page.locator(".notice.success", has_text="已创建 4 个场次").wait_for()
    q = f"/v1/sessions?base_id={base_id}&from={first}T16:00:00%2B08:00&to={first + dt.timedelta(days=14)}T00:00:00%2B08:00&limit=100"
    evenings = [s for s in operator.call("GET", q)["items"] if s["starts_at"].endswith(("08:30:00Z", "08:30:00+00:00"))]
    assert len(evenings) == 4, evenings
    check_accessibility(page, "sessions after changes")
