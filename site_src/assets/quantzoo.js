// quantzoo catalog: sortable tables, the catalog filters, the site URL in the pull snippet.
// Plain DOM, no dependencies; the pages are complete without it (it only sorts and hides rows).
(function () {
  "use strict";

  function cellValue(row, index, type) {
    var cell = row.cells[index];
    if (!cell) return type === "num" ? NaN : "";
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (type === "num") {
      var x = parseFloat(raw);
      return isNaN(x) ? NaN : x;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, index, type, direction) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var pinned = rows.filter(function (r) { return r.classList.contains("qz-float"); });
    rows = rows.filter(function (r) { return !r.classList.contains("qz-float"); });
    var keyed = rows.map(function (r, i) { return { row: r, key: cellValue(r, index, type), i: i }; });
    keyed.sort(function (a, b) {
      var x = a.key, y = b.key;
      // empty cells (no value) always go last, whatever the direction
      var xe = type === "num" ? isNaN(x) : x === "", ye = type === "num" ? isNaN(y) : y === "";
      if (xe !== ye) return xe ? 1 : -1;
      if (x < y) return -direction;
      if (x > y) return direction;
      return a.i - b.i;
    });
    pinned.concat(keyed.map(function (k) { return k.row; })).forEach(function (r) { body.appendChild(r); });
  }

  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, index) {
      var type = th.getAttribute("data-type") || "text";
      th.classList.add("qz-sort");
      th.setAttribute("tabindex", "0");
      th.setAttribute("aria-sort", "none");
      function activate() {
        var direction = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
        sortTable(table, index, type, direction);
      }
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(); }
      });
    });
  }

  function makeFilters(box) {
    var table = document.getElementById(box.getAttribute("data-qz-table"));
    if (!table) return;
    var task = box.querySelector("[data-qz-filter=task]");
    var size = box.querySelector("[data-qz-filter=max-size]");
    var text = box.querySelector("[data-qz-filter=text]");
    var count = box.querySelector("[data-qz-count]");
    function apply() {
      var t = task ? task.value : "";
      var maxMb = size && size.value !== "" ? parseFloat(size.value) : NaN;
      var q = text ? text.value.trim().toLowerCase() : "";
      var rows = table.tBodies[0].rows, shown = 0;
      Array.prototype.forEach.call(rows, function (r) {
        var ok = (!t || r.getAttribute("data-task") === t) &&
          (isNaN(maxMb) || parseFloat(r.getAttribute("data-size")) <= maxMb * 1e6) &&
          (!q || (r.getAttribute("data-text") || "").indexOf(q) !== -1);
        r.hidden = !ok;
        if (ok) shown++;
      });
      if (count) count.textContent = shown + " of " + rows.length + " models";
    }
    [task, size, text].forEach(function (el) {
      if (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); }
    });
    apply();
  }

  function siteRoot() {
    // the directory holding index.json: the page's URL minus the page's depth below the root
    var base = document.querySelector("script[src$='assets/quantzoo.js']");
    if (base) return new URL(".", new URL("..", base.src)).href;
    return new URL(".", window.location.href).href;
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.qz-sortable"), makeSortable);
    Array.prototype.forEach.call(document.querySelectorAll(".qz-filters"), makeFilters);
    var root = siteRoot();
    Array.prototype.forEach.call(document.querySelectorAll(".qz-site-root"), function (el) {
      el.textContent = root;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
