/* Progressive enhancement only: sortable tables (click or Enter on a header) and the
   overview's filters. Every page reads the same without it. No request, no storage. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // A page holds the three languages and shows the one its address picks (the stylesheet
  // does, with :target); the document's lang, dir and title follow, for screen readers,
  // :dir() and the tab.
  if (document.body.classList.contains("tri")) {
    var pick = function () {
      var found = /^#(fr|ar)(-|$)/.exec(window.location.hash);
      var lang = found ? found[1] : "en";
      document.documentElement.lang = lang;
      document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
      var heading = document.querySelector("main h1");
      var site = document.querySelector("header [lang='" + lang + "'] .site");
      if (heading && site) {  // by lang, not by what shows: :target may not apply yet
        var own = heading.querySelector("[lang='" + lang + "']") || heading;
        document.title = own.textContent.trim() + " · " + site.textContent.trim();
      }
      Array.prototype.forEach.call(document.querySelectorAll(".langs a[hreflang]"), function (a) {
        if (a.hreflang === lang) { a.setAttribute("aria-current", "page"); }
        else { a.removeAttribute("aria-current"); }
      });
    };
    pick();
    window.addEventListener("hashchange", pick);
  }

  // A cell's sort key: its data-v, else the number it shows first (class "s" or <b>), else its
  // text. Big tables carry no data-v: the shown number is the key.
  function key(cell) {
    if (!cell) { return null; }
    var v = cell.getAttribute("data-v");
    if (v === null) {
      var shown = cell.querySelector(".s, b");
      v = (shown || cell).textContent.trim().replace(/^Δ\s*/, "");
      if (v === "–") { return null; }
    }
    if (v === "") { return null; }
    if (!isNaN(Number(v))) { return Number(v); }
    var text = v.trim().toLowerCase();
    return text === "" || text === "–" ? null : text;
  }

  function compare(x, y) {
    if (x === null || y === null) { return 0; }
    if (typeof x !== typeof y) { return typeof x === "number" ? -1 : 1; }
    if (typeof x === "string") { return x.localeCompare(y); }
    return x < y ? -1 : x > y ? 1 : 0;
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var head = table.tHead, body = table.tBodies[0];
    if (!head || !body) { return; }
    var headers = Array.prototype.slice.call(head.rows[0].cells);
    headers.forEach(function (th, column) {
      th.classList.add("sortable-th");
      th.setAttribute("tabindex", "0");
      th.setAttribute("aria-sort", "none");
      function sort() {
        var current = th.getAttribute("aria-sort");
        var first = th.getAttribute("data-first") === "desc" ? "descending" : "ascending";
        var order = current === "none" ? first
          : current === "ascending" ? "descending" : "ascending";
        headers.forEach(function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", order);
        var sign = order === "ascending" ? 1 : -1;
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[column]), y = key(b.cells[column]);
          if (x === null || y === null) { return (x === null ? 1 : 0) - (y === null ? 1 : 0); }
          return compare(x, y) * sign;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });

  // The overview's filters: a form per language (one shows), kept in step.
  var forms = Array.prototype.slice.call(document.querySelectorAll("form.filters"));
  forms.forEach(function (form) {
    var table = document.getElementById(form.getAttribute("data-table"));
    if (!table) { return; }
    var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-attr]"));
    function apply() {
      var shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var keep = selects.every(function (s) {
          return s.value === "" || row.getAttribute("data-" + s.getAttribute("data-attr")) === s.value;
        });
        row.hidden = !keep;
        if (keep) { shown += 1; }
      });
      forms.forEach(function (other) {
        if (other.getAttribute("data-table") !== form.getAttribute("data-table")) { return; }
        selects.forEach(function (s) {
          var twin = other.querySelector("select[data-attr='" + s.getAttribute("data-attr") + "']");
          if (twin) { twin.value = s.value; }
        });
        var output = other.querySelector("output.shown");
        if (output) {
          output.textContent = output.getAttribute("data-template").replace("{n}", String(shown));
        }
      });
    }
    selects.forEach(function (s) { s.addEventListener("change", apply); });
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
    apply();
  });
})();
