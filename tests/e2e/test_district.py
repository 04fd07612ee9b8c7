"""A district officer: the work list (a plaque to approve), the sign map, and the statistics
with their CSV download."""

from conftest import check_accessibility, login, screenshots


def test_the_district_officer_approves_a_sign_and_downloads_statistics(page, api):
    officer = api("officer-tianhe")
    # A plaque for a Tianhe base, applied for by the bureau: it waits for the district.
    base = api().call("GET", "/v1/bases?district=440106&status=accredited&limit=1")["items"][0]
    where = {"lat": base["location"]["lat"] + 0.0004, "lon": base["location"]["lon"]}
    sign = api("admin").call("POST", f"/v1/bases/{base['id']}/signs", {"type": "plaque", "location": where}, expect=201)

    login(page, "officer-tianhe")
    page.get_by_role("heading", name="待办事项").wait_for()
    section = page.locator(f"li[data-sign='{sign['id']}']")
    section.wait_for()
    check_accessibility(page, "work list")
    screenshots(page, "district-work")
    section.locator("summary", has_text="批准设置").click()
    section.get_by_role("button", name="批准设置").click()
    # The list is drawn again, saying so; the sign has left it.
    page.locator(".notice.success", has_text="已批准").wait_for()
    assert page.locator(f"li[data-sign='{sign['id']}']").count() == 0
    assert officer.call("GET", f"/v1/signs/{sign['id']}")["status"] == "approved"

    page.get_by_role("link", name="标识地图").click()
    page.locator("svg.map").wait_for()
    check_accessibility(page, "sign map")

    page.get_by_role("link", name="科普统计").click()
    page.locator("table.stats").wait_for()
    assert "天河区" in page.locator("table.stats").inner_text()
    check_accessibility(page, "statistics")
    screenshots(page, "district-statistics")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载 CSV").click()
    data = open(download.value.path(), "rb").read()
    assert data.startswith(b"\xef\xbb\xbf") and b"scope,id,name,period" in data and "天河区".encode() in data
