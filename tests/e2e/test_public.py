"""The public: accredited bases on a map, a certificate verified, and an objection filed to an
application on public notice — with the keyboard alone."""

from conftest import check_accessibility, screenshots


def test_anyone_sees_the_bases_and_verifies_a_certificate(page, api):
    page.goto("/")
    page.get_by_role("heading", name="广州市科普基地").wait_for()
    assert page.locator("svg.map circle.dot").count() >= 10
    # A dot shows its base in the list.
    page.locator("svg.map circle.dot").first.click()
    page.locator("li.card.chosen").wait_for()
    check_accessibility(page, "bases")
    screenshots(page, "public-bases")
    number = api().call("GET", "/v1/certificates?limit=1")["items"][0]["number"]
    page.get_by_role("link", name="证书查验").click()
    page.get_by_label("证书编号").fill(number)
    page.get_by_role("button", name="查验").click()
    page.get_by_text("证书有效").wait_for()
    page.get_by_label("证书编号").fill("GZKP-1999-9999")
    page.get_by_role("button", name="查验").click()
    page.get_by_role("alert").wait_for()
    check_accessibility(page, "certificates")


def test_anyone_objects_to_an_application_on_notice_with_the_keyboard_alone(page, api):
    notices = api().call("GET", "/v1/public-notices")["items"]
    target = next(n for n in notices if n["open_for_objections"])
    page.goto("/#/notices")
    card = page.locator(f"li[data-accreditation='{target['accreditation_id']}']")
    card.wait_for()
    check_accessibility(page, "public notices")
    # Tab to the card's "object" control, open it, fill the form and send it: keys only.
    summary = card.locator("summary")
    for _ in range(60):
        page.keyboard.press("Tab")
        if summary.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("the objection control is not reachable with Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert card.get_by_label("异议理由").evaluate("el => el === document.activeElement")
    page.keyboard.type("该基地的展厅面积与实际不符")
    page.keyboard.press("Tab")
    page.keyboard.type("张三")
    page.keyboard.press("Tab")
    page.keyboard.type("zhang@example.cn")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    card.get_by_text("异议已提交").wait_for()
    screenshots(page, "public-notice-objected")

    held = api("admin").call("GET", f"/v1/accreditations/{target['accreditation_id']}")
    reasons = [(o["reason"], o["name"], o["contact"]) for o in held["objections"]]
    assert ("该基地的展厅面积与实际不符", "张三", "zhang@example.cn") in reasons, reasons
