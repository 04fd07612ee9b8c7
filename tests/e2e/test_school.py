"""A school's coordinator: finds a session for 45 pupils near the school, books it, sees the
check-in code in "my bookings", subscribes to the calendar, and cancels."""

import datetime as dt
import re
import urllib.parse

from conftest import check_accessibility, login, screenshots

CITY = dt.timezone(dt.timedelta(hours=8))


def test_a_school_finds_books_sees_and_cancels_a_visit(page, api, server):
    school_api = api("school-demo")
    me = school_api.call("GET", "/v1/me")
    school = school_api.call("GET", f"/v1/schools/{me['school_id']}")
    near = f"{school['location']['lat']},{school['location']['lon']}"
    tomorrow = (dt.datetime.now(CITY) + dt.timedelta(days=1)).date()
    # A day with a session that has room for 45 pupils and 3 teachers, as the page will ask.
    q = {"near": near, "radius_km": 60, "min_free": 48, "bookable": "true", "limit": 1,
         "from": f"{tomorrow}T00:00:00+08:00"}
    first = school_api.call("GET", "/v1/sessions?" + urllib.parse.urlencode(q))["items"][0]
    day = dt.datetime.fromisoformat(first["starts_at"]).astimezone(CITY).date()
    audience = first["audiences"][0]
    q.update({"from": f"{day}T00:00:00+08:00", "to": f"{day + dt.timedelta(days=1)}T00:00:00+08:00",
              "audience": audience, "limit": 50})
    target = school_api.call("GET", "/v1/sessions?" + urllib.parse.urlencode(q))["items"][0]

    login(page, "school-demo")
    page.get_by_role("heading", name="预约参观").wait_for()
    search = page.locator("form#find")
    search.get_by_label("开始日期").fill(str(day))
    search.get_by_label("天数").fill("1")
    search.get_by_label("学段").select_option(audience)
    search.get_by_label("学生人数").fill("45")
    search.get_by_label("带队教师人数").fill("3")
    search.get_by_label("距离（公里）").fill("60")
    search.get_by_role("button", name="查找").click()
    card = page.locator(f"li[data-session='{target['id']}']")
    card.wait_for()
    assert "余位" in card.inner_text()
    check_accessibility(page, "session finder")
    screenshots(page, "school-find")

    card.locator("summary").click()
    card.get_by_label("联系人").fill("王老师")
    card.get_by_label("联系电话").fill("020-8888 0000")
    card.get_by_role("button", name="确认预约").click()
    card.get_by_text("预约成功").wait_for()
    code = card.locator(".code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{6}", code), code

    # The API holds the booking the page showed.
    mine = school_api.call("GET", f"/v1/bookings?school_id={me['school_id']}&session_id={target['id']}")["items"]
    assert len(mine) == 1 and mine[0]["status"] == "confirmed" and mine[0]["code"] == code, mine
    assert (mine[0]["students"], mine[0]["teachers"], mine[0]["audience"]) == (45, 3, audience)

    # My bookings: the code, the calendar feed, and a cancellation.
    page.get_by_role("navigation").get_by_role("link", name="我的预约").click()
    booking = page.locator(f"li[data-booking='{mine[0]['id']}']")
    booking.wait_for()
    assert code in booking.inner_text()
    page.get_by_role("button", name="生成新的订阅链接").click()
    feed = page.get_by_label("订阅链接").input_value()
    assert f"/v1/schools/{me['school_id']}/bookings.ics?token=" in feed, feed
    ics = page.request.get(feed)
    assert ics.status == 200 and "BEGIN:VCALENDAR" in ics.text() and f"UID:{mine[0]['id']}@kepu" in ics.text()
    check_accessibility(page, "my bookings")
    screenshots(page, "school-bookings")

    booking.locator("summary", has_text="取消预约").click()
    booking.get_by_role("button", name="确认取消").click()
    booking.get_by_text("预约已取消").wait_for()
    after = school_api.call("GET", f"/v1/bookings/{mine[0]['id']}")
    assert after["status"] == "cancelled" and after["late_cancellation"] is False

    # The demo's Science Week sign-up opens in an hour: shown, not yet open.
    page.get_by_role("navigation").get_by_role("link", name="科普游报名").click()
    page.get_by_text("尚未开始报名").wait_for()
    check_accessibility(page, "tour sign-up")


def test_the_page_speaks_english_when_asked_and_remembers(page):
    page.goto("/")
    page.get_by_role("heading", name="广州市科普基地").wait_for()
    page.get_by_role("button", name="English").click()
    page.get_by_role("heading", name="Guangzhou's science bases").wait_for()
    page.reload()
    page.get_by_role("link", name="Public notices").wait_for()
    page.get_by_role("button", name="中文").click()
    page.get_by_role("link", name="认定公示").wait_for()


def test_a_school_signs_up_for_a_tour_campaign_and_finds_it_from_another_browser(page, open_page, api):
    admin = api("admin")
    tour = admin.call("GET", "/v1/tours?limit=1")["items"][0]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    opens = now + dt.timedelta(seconds=15)
    campaign = admin.call("POST", "/v1/campaigns", {
        "title": "测试 · 科普一日游报名", "opens_at": opens.isoformat(), "closes_at": (now + dt.timedelta(days=2)).isoformat(),
        "for_schools": True, "for_citizens": False, "max_wins": 1, "tours": [tour["id"]],
    }, expect=201)
    # Sign-up opens once its seed's commitment is published: wait for it.
    while dt.datetime.now(dt.timezone.utc) < opens + dt.timedelta(seconds=1):
        page.wait_for_timeout(500)

    login(page, "school-demo")
    page.get_by_role("navigation").get_by_role("link", name="科普游报名").click()
    card = page.locator("li.card", has_text="测试 · 科普一日游报名")
    card.get_by_role("button", name="提交报名").wait_for()
    card.get_by_label("学生人数").fill("30")
    card.get_by_label("带队教师人数").fill("2")
    card.get_by_label("联系人").fill("赵老师")
    card.get_by_label("联系电话").fill("020-1234 5678")
    card.get_by_role("button", name="提交报名").click()
    card.get_by_text("报名成功").wait_for()
    mine = api("school-demo").call("GET", f"/v1/campaigns/{campaign['id']}/applications")["items"]
    assert len(mine) == 1 and mine[0]["preferences"] == [tour["id"]] and mine[0]["people"] == 32, mine

    elsewhere = open_page()
    login(elsewhere, "school-demo")
    elsewhere.get_by_role("navigation").get_by_role("link", name="科普游报名").click()
    elsewhere.locator("li.card", has_text="测试 · 科普一日游报名").get_by_text("已报名，等待抽签").wait_for()
    check_accessibility(elsewhere, "tour sign-up")
