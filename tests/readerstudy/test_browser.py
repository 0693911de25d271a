"""Three readers score a 12-image study in headless Chromium (Debian's chromium + chromedriver via selenium,
started as the viewer tests start it); the analysis equals the statistics computed independently (scipy) from
the database rows."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from scipy import stats as st

from tests.readerstudy.conftest import make_volumes
from tests.readerstudy.test_live_server import free_port, start_server, stop_server
from trabecula.readerstudy import add_reader, analyse, create_study
from trabecula.readerstudy.criteria import CRITERIA


def wanted(k_reader: int, iid: str) -> dict[str, int]:
    """Readers who mostly agree: a per-image base score, shifted by one for some reader/image pairs."""
    base = int(iid[:6], 16)
    out = {}
    for j, c in enumerate(CRITERIA):
        v = 1 + (base >> (2 * j)) % c.points
        if (base >> (11 + j + k_reader)) % 4 == 0:
            v = min(c.points, v + 1)
        out[c.key] = v
    return out


@pytest.mark.slow
def test_three_readers_in_chromium_and_the_analysis_equals_scipy_on_the_rows(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from trabecula.render.viewer.browser import start_chromium, stop_chromium, wait_for

    db = tmp_path / "study.db"
    create_study(db, make_volumes(tmp_path), per_method=6, seed=5, size=128)
    readers = [add_reader(db, f"Observer {k}") for k in (1, 2, 3)]
    port = free_port()
    proc = start_server(db, port)
    driver = start_chromium(1200, 900)
    try:
        for k, (rid, tok) in enumerate(readers):
            driver.get(f"http://127.0.0.1:{port}/r/{rid}?token={tok}")
            assert tok not in driver.current_url  # the token left the address bar
            wait_for(driver, "window.readerStudy && readerStudy.ready", what="the reader page")
            order = driver.execute_script("return readerStudy.order;")
            assert len(order) == 12
            for n, iid in enumerate(order):
                assert driver.execute_script("return readerStudy.order[readerStudy.index];") == iid
                w = wanted(k, iid)
                if k == 0:  # clicks
                    for c in CRITERIA:
                        driver.find_element(By.CSS_SELECTOR, f'input[name="{c.key}"][value="{w[c.key]}"]').click()
                    driver.find_element(By.ID, "next").click()
                else:  # keyboard: a digit per question (the focus moves on), then → for the next image
                    ActionChains(driver).send_keys(*[str(w[c.key]) for c in CRITERIA], Keys.ARROW_RIGHT).perform()
                wait_for(driver, "readerStudy.pending === 0", what="the answers to be saved")
                if n == 5 and k == 1:  # close the browser page and come back: resumes at the next unscored image
                    driver.get("about:blank")
                    driver.get(f"http://127.0.0.1:{port}/r/{rid}")
                    wait_for(driver, "window.readerStudy && readerStudy.ready", what="the page after reopening")
                    assert driver.execute_script("return readerStudy.index;") == 6
            assert driver.execute_script("return readerStudy.errors;") == []
            assert driver.execute_script("return readerStudy.scored;") == 12
    finally:
        stop_chromium(driver)
        stop_server(proc)

    con = sqlite3.connect(db)
    rows = con.execute("select r.name, a.image_id, i.method, a.contrast, a.noise, a.sharpness, a.shadow, a.texture "
                       "from answer a join reader r on r.id = a.reader_id join image i on i.id = a.image_id").fetchall()
    con.close()
    assert len(rows) == 36
    names = {rid: f"Observer {k}" for k, (rid, _) in enumerate(readers, 1)}
    for name, iid, _, *vals in rows:
        k = [n for n in names.values()].index(name)
        assert vals == list(wanted(k, iid).values())  # every click arrived as meant

    a = analyse(db)
    methods = sorted({r[2] for r in rows})
    for j, c in enumerate(CRITERIA):
        for m in methods:
            table = {}
            for name, iid, meth, *vals in rows:
                if meth == m:
                    table.setdefault(iid, {})[name] = vals[j]
            x = np.array([[table[i][n] for n in sorted(names.values())] for i in sorted(table)], float)
            got = a.kendall.set_index(["criterion", "method"]).loc[(c.key, m)]
            if np.all(x == x[0, 0]):
                assert np.isnan(got["W"])
            else:
                chi2 = st.friedmanchisquare(*x).statistic  # images as groups, readers as blocks
                assert got["W"] == pytest.approx(chi2 / (x.shape[1] * (x.shape[0] - 1)), abs=1e-9)
            mm = a.means.set_index(["criterion", "method"]).loc[(c.key, m)]
            assert mm["mean"] == pytest.approx(x.mean()) and mm["sd"] == pytest.approx(x.ravel().std(ddof=1))
        xa = [r[3 + j] for r in rows if r[2] == a.methods[0]]
        xb = [r[3 + j] for r in rows if r[2] == a.methods[1]]
        got = a.mann_whitney.set_index("criterion").loc[c.key]
        if len(set(xa + xb)) > 1:
            ref = st.mannwhitneyu(xa, xb, use_continuity=False, method="asymptotic")
            assert got["U"] == ref.statistic and got["p"] == pytest.approx(ref.pvalue)
