"""An evaluator scores the accreditation application assigned to it: points and a comment
per criterion beside the figures the base reported."""

from conftest import check_accessibility, login, screenshots


def test_the_evaluator_scores_an_assigned_application(page, api):
    evaluator = api("evaluator-demo")
    me = evaluator.call("GET", "/v1/me")
    assigned = evaluator.call("GET", "/v1/accreditations?status=expert_review")["items"]
    todo = [a for a in assigned if not any(r["evaluator_id"] == me["id"] and r["total"] is not None for r in a["reviews"])]
    assert todo, "the demo assigns the evaluator an application"
    application = todo[0]
    standard = next(s for s in evaluator.call("GET", "/v1/accreditation-standards")["items"] if s["id"] == application["standard_id"])

    login(page, "evaluator-demo")
    card = page.locator(f"li[data-accreditation='{application['id']}']")
    card.wait_for()
    assert "申报数据与认定标准" in card.inner_text()
    expected = {}
    for i, c in enumerate(standard["scoring_sheet"]):
        points = c["max_points"] - 1 - i
        expected[c["key"]] = points
        card.get_by_label(f"{c['name']}（满分 {c['max_points']}）").fill(str(points))
    first = standard["scoring_sheet"][0]
    card.get_by_label(f"{first['name']} 评语").fill("展厅面积充足")
    card.get_by_label("总体评语").fill("建议通过")
    check_accessibility(page, "review")
    screenshots(page, "evaluator-review")
    card.get_by_role("button", name="提交评分").click()
    card.get_by_text("评分已保存").wait_for()

    after = evaluator.call("GET", f"/v1/accreditations/{application['id']}")
    review = next(r for r in after["reviews"] if r["evaluator_id"] == me["id"])
    assert {k: round(v) for k, v in review["points"].items()} == expected, review
    assert review["comments"] == {first["key"]: "展厅面积充足"} and review["comment"] == "建议通过"


def test_the_evaluator_scores_an_annual_evaluation_beside_the_measured_figures(page, api):
    evaluator = api("evaluator-demo")
    me = evaluator.call("GET", "/v1/me")
    listed = evaluator.call("GET", "/v1/evaluations")["items"]
    whole = [evaluator.call("GET", f"/v1/evaluations/{e['id']}") for e in listed if e["finalized_at"] is None]
    mine = [e for e in whole if any(r["evaluator_id"] == me["id"] for r in e["reviews"])]
    assert mine, "the demo assigns the evaluator an annual evaluation"
    evaluation = mine[0]
    cycle = next(c for c in evaluator.call("GET", "/v1/evaluation-cycles")["items"] if c["id"] == evaluation["cycle_id"])

    login(page, "evaluator-demo")
    card = page.locator(f"li[data-evaluation='{evaluation['id']}']")
    card.wait_for()
    table = card.locator("table").inner_text()
    assert "预约人数" in table and "8600" in table, table
    points = {}
    for section in cycle["rubric"]["sections"]:
        for i in section["indicators"]:
            field = card.get_by_label(f"{section['name']} · {i['name']}（满分 {i['max_points']:g}）")
            suggested = evaluation["suggested_points"].get(i["key"])
            if suggested is not None:
                assert float(field.input_value()) == suggested, "the measured figures' points are filled in"
            points[i["key"]] = i["max_points"] - 2
            field.fill(str(points[i["key"]]))
    card.get_by_label("总体评语").fill("运行规范")
    card.get_by_role("button", name="提交评分").click()
    card.get_by_text("评分已保存").wait_for()
    check_accessibility(page, "annual evaluation")

    after = evaluator.call("GET", f"/v1/evaluations/{evaluation['id']}")
    review = next(r for r in after["reviews"] if r["evaluator_id"] == me["id"])
    assert review["points"] == points and review["comment"] == "运行规范", review
