"""The start page of ``slicewise`` without a file (issue 23): open your data (with the formats),
the cone demo in one click, recent files and results, the example configurations, the own-data
walkthrough."""

from __future__ import annotations

from PyQt6.QtCore import Qt

from slicewise.app import settings

from .conftest import fast_run, open_data, wait_idle


def _click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def _click_item(qtbot, lst, row: int) -> None:
    item = lst.item(row)
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton,
                     pos=lst.visualItemRect(item).center())


def test_start_page_instead_of_empty_plots(qtbot, window, monkeypatch):
    from slicewise.app import dialogs as dlg_mod

    w = window
    assert w.on_start_page() and w.central.currentWidget() is w.start_page
    assert not w.start_reason_action.isVisible()   # no red "cannot start" line
    sp = w.start_page
    formats = [lab.text() for lab in sp.findChildren(type(sp.walkthrough_link))]
    assert any("CXI 1.x (.cxi)" in f and "DXchange" in f and "Adorym" in f for f in formats)
    assert sp.recent.item(0).text() == "(nothing opened yet)"
    asked = []
    monkeypatch.setattr(dlg_mod, "open_file", lambda *a: asked.append(a[1]) or None)
    _click(qtbot, sp.open_button)                  # "Open your data..."
    assert asked and "Open" in asked[0]
    assert w.on_start_page()                       # nothing chosen: still here


def test_recent_files_and_results_open_from_the_start_page(qtbot, window, holo_file, tmp_path,
                                                           dialogs, make_window):
    w = window
    open_data(qtbot, w, holo_file)
    assert not w.on_start_page()                   # something is open: the workspace
    fast_run(w, tmp_path / "out", epochs=1)
    w.start_run()
    wait_idle(qtbot, w)
    settings.add_recent_file(str(tmp_path / "out" / "result.h5"))
    w.close()                                      # its parameters: the last session
    w2 = make_window()
    w2.show()
    qtbot.waitExposed(w2)
    sp = w2.start_page
    assert w2.on_start_page()
    texts = [sp.recent.item(i).text() for i in range(sp.recent.count())]
    assert texts == ["result.h5   (result)", f"{holo_file.name}   (data)"]
    assert sp.restore_button.isVisible() and holo_file.name in sp.restore_button.text()
    _click_item(qtbot, sp.recent, 0)               # one click opens it
    qtbot.waitUntil(lambda: w2.result_path is not None and w2.slice_view.has_data(),
                    timeout=15000)
    assert not w2.on_start_page() and w2.tabs.isVisible()
    w2.act_start_page.trigger()                    # View > Start page goes back
    assert w2.on_start_page()
    assert not dialogs.errors, dialogs.errors


def test_example_configuration_and_walkthrough(qtbot, window):
    w = window
    sp = w.start_page
    kinds = [sp.examples.item(i).data(Qt.ItemDataRole.UserRole)
             for i in range(sp.examples.count())]
    assert kinds == ["ptycho", "holo", "tomo", "nearfield-ptycho"]
    _click_item(qtbot, sp.examples, 3)
    assert not w.on_start_page()
    assert w.params.value("model.kind") == "nfptycho"
    assert w.params.value("data.path") in ("", None)          # the user's data comes next
    assert "open your data" in w.statusBar().currentMessage()
    assert w.start_reason_action.isVisible() and "data" in w.start_reason.text()
    w.show_start_page()
    sp.walkthrough_link.linkActivated.emit("walkthrough")     # the link's click
    dlg = w.walkthrough
    assert dlg.isVisible() and "CXI 1.x" in dlg.text.toPlainText()
    assert "Real measurements" in dlg.text.toPlainText()      # the document's title, formatted
    dlg.close()


def test_demo_in_one_click(qtbot, window, dialogs):
    w = window
    _click(qtbot, w.start_page.demo_button)
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=120000)   # loaded and started
    assert not w.on_start_page()
    assert w.params.value("model.kind") == "holo"
    w.stop_run()
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
