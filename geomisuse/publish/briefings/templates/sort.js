(function () {
  "use strict";
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var body = table.tBodies[0];
    var headers = table.querySelectorAll("thead th[data-type]");
    // The column index of each sortable header, counting across the two header rows.
    var firstRow = table.tHead.rows[0], index = 0, columns = [];
    Array.prototype.forEach.call(firstRow.cells, function (cell) {
      var span = cell.colSpan || 1;
      if (cell.rowSpan === 2) { columns.push({ cell: cell, index: index }); }
      else { for (var k = 0; k < span; k++) { columns.push({ cell: null, index: index + k }); } }
      index += span;
    });
    var second = table.tHead.rows[1] ? table.tHead.rows[1].cells : [];
    var j = 0;
    columns.forEach(function (c) { if (c.cell === null) { c.cell = second[j++]; } });
    columns.forEach(function (c) {
      if (!c.cell || !c.cell.hasAttribute("data-type")) { return; }
      c.cell.tabIndex = 0;
      c.cell.classList.add("sort");
      var sort = function () {
        var numeric = c.cell.getAttribute("data-type") === "number";
        var ascending = c.cell.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        c.cell.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[c.index].getAttribute("data-sort") || "";
          var y = b.cells[c.index].getAttribute("data-sort") || "";
          if (x === "" || y === "") { return (x === "") - (y === ""); }  // blanks last
          var r = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return ascending ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      };
      c.cell.addEventListener("click", sort);
      c.cell.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  });
})();
