// moebench HTML report: table sorting and sample filtering. No network, no libraries.
(function () {
  "use strict";
  window.addEventListener("error", function (e) {
    document.documentElement.setAttribute("data-js-error", String(e.message || e));
  });

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var v = cell.getAttribute("data-v");
    return v !== null ? v : cell.textContent.trim();
  }

  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    var xn = a !== "" && !isNaN(x) && isFinite(a), yn = b !== "" && !isNaN(y) && isFinite(b);
    if (xn && yn) return x - y;
    if (xn !== yn) return xn ? -1 : 1;  // numbers before blanks and text
    return a.localeCompare(b);
  }

  function sortBy(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.cells, th);
    var asc = !th.classList.contains("asc");
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.classList.remove("asc", "desc"); });
    th.classList.add(asc ? "asc" : "desc");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var d = compare(cellValue(r1, index), cellValue(r2, index));
      return asc ? d : -d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function initSorting() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("thead th").forEach(function (th) {
        th.classList.add("sortable");
        th.addEventListener("click", function () { sortBy(table, th); });
      });
    });
  }

  function initFilter() {
    var table = document.getElementById("samples-table");
    if (!table) return;
    var model = document.getElementById("f-model"), task = document.getElementById("f-task");
    var fails = document.getElementById("f-fail"), text = document.getElementById("f-text");
    var count = document.getElementById("f-count");
    function apply() {
      var shown = 0, needle = text.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var ok = (!model.value || r.getAttribute("data-model") === model.value) &&
                 (!task.value || r.getAttribute("data-task") === task.value) &&
                 (!fails.checked || r.getAttribute("data-passed") !== "true") &&
                 (!needle || r.textContent.toLowerCase().indexOf(needle) !== -1);
        r.hidden = !ok;
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + table.tBodies[0].rows.length + " samples";
    }
    [model, task, fails].forEach(function (el) { el.addEventListener("change", apply); });
    text.addEventListener("input", apply);
    apply();
  }

  // Which tables would need horizontal scrolling at this window width (checked in CI with
  // headless Chromium at 1400 px: none may).
  function markWideTables() {
    var wide = [];
    document.querySelectorAll(".scroll").forEach(function (box) {
      var table = box.querySelector("table");
      if (table && box.scrollWidth > box.clientWidth + 1) wide.push(table.id || "table");
    });
    document.documentElement.setAttribute("data-wide-tables", wide.join(" "));
  }

  function init() {
    initSorting();
    initFilter();
    markWideTables();
    document.documentElement.setAttribute("data-js-ready", "1");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
