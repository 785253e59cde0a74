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

  function sortableHeads(table) {
    // the columns a reader can sort by: data-type "num" or "text" ("none": not sortable)
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    return Array.prototype.filter.call(heads, function (th) { return th.getAttribute("data-type") !== "none"; });
  }

  function sortBy(table, th, direction) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (h) { if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
    sortTable(table, th.cellIndex, th.getAttribute("data-type") || "text", direction);
  }

  function makeSortable(table) {
    sortableHeads(table).forEach(function (th) {
      th.classList.add("qz-sort");
      th.setAttribute("tabindex", "0");
      th.setAttribute("aria-sort", "none");
      function activate() {
        sortBy(table, th, th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
      }
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(); }
      });
    });
  }

  function sortSelect(table) {
    // a "sort by" choice for narrow screens, where the table is a list of cards and has no header row
    var label = document.createElement("label");
    label.className = "qz-sort-by";
    label.appendChild(document.createTextNode("Sort by "));
    var select = document.createElement("select");
    select.setAttribute("data-qz-sort", "");
    var heads = sortableHeads(table);
    select.appendChild(new Option("catalog order", ""));
    heads.forEach(function (th, i) {
      var name = th.textContent.trim(), num = th.getAttribute("data-type") === "num";
      select.appendChild(new Option(name + (num ? ", smallest first" : ", A to Z"), i + ":1"));
      select.appendChild(new Option(name + (num ? ", largest first" : ", Z to A"), i + ":-1"));
    });
    var original = Array.prototype.slice.call(table.tBodies[0].rows);
    select.addEventListener("change", function () {
      if (!select.value) {
        original.forEach(function (r) { table.tBodies[0].appendChild(r); });
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        return;
      }
      var parts = select.value.split(":");
      sortBy(table, heads[parseInt(parts[0], 10)], parseInt(parts[1], 10));
    });
    label.appendChild(select);
    return label;
  }

  function makeFilters(box) {
    var table = document.getElementById(box.getAttribute("data-qz-table"));
    if (!table) return;
    var filters = {
      task: box.querySelector("[data-qz-filter=task]"),
      license: box.querySelector("[data-qz-filter=license]"),
      size: box.querySelector("[data-qz-filter=max-size]"),
      text: box.querySelector("[data-qz-filter=text]")
    };
    var count = box.querySelector("[data-qz-count]");
    var empty = document.querySelector("[data-qz-empty='" + table.id + "']");
    function apply() {
      var t = filters.task ? filters.task.value : "";
      var lic = filters.license ? filters.license.value : "";
      var maxMb = filters.size && filters.size.value !== "" ? parseFloat(filters.size.value) : NaN;
      var q = filters.text ? filters.text.value.trim().toLowerCase() : "";
      var rows = table.tBodies[0].rows, shown = 0;
      Array.prototype.forEach.call(rows, function (r) {
        var ok = (!t || r.getAttribute("data-task") === t) &&
          (!lic || r.getAttribute("data-license") === lic) &&
          (isNaN(maxMb) || parseFloat(r.getAttribute("data-size")) <= maxMb * 1e6) &&
          (!q || (r.getAttribute("data-text") || "").indexOf(q) !== -1);
        r.hidden = !ok;
        if (ok) shown++;
      });
      if (count) count.textContent = shown + " of " + rows.length + " models";
      if (empty) empty.hidden = shown > 0;
    }
    Object.keys(filters).forEach(function (k) {
      var el = filters[k];
      if (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); }
    });
    if (table.classList.contains("qz-sortable")) box.insertBefore(sortSelect(table), count);
    box.hidden = false;  // shown only where it works: the page without JavaScript is the full table
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
