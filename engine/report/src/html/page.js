// twinflow report: clicking a step (graph node or table row) highlights its
// tasks in the timeline; the search box filters the artefact table. The
// page is complete without this script; it only adds the interactions.
(function () {
  "use strict";
  var timeline = document.getElementById("timeline");
  var graph = document.getElementById("step-graph");
  if (!timeline || !graph) {
    throw new Error("twinflow report: graph or timeline missing");
  }
  var selected = null;
  function select(step) {
    selected = selected === step ? null : step;
    timeline.classList.toggle("dim", selected !== null);
    timeline.querySelectorAll(".task").forEach(function (bar) {
      bar.classList.toggle("hl", bar.getAttribute("data-step") === selected);
    });
    graph.querySelectorAll(".node").forEach(function (node) {
      node.classList.toggle("sel", node.getAttribute("data-step") === selected);
    });
    document.querySelectorAll("table.steps tr[data-step]").forEach(function (row) {
      row.classList.toggle("hl", row.getAttribute("data-step") === selected);
    });
  }
  graph.querySelectorAll(".node").forEach(function (node) {
    node.addEventListener("click", function () { select(node.getAttribute("data-step")); });
    node.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { select(node.getAttribute("data-step")); }
    });
  });
  document.querySelectorAll("table.steps tr[data-step]").forEach(function (row) {
    row.addEventListener("click", function () { select(row.getAttribute("data-step")); });
  });
  var filter = document.getElementById("artefact-filter");
  var rows = document.querySelectorAll("table.artefacts tbody tr");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      rows.forEach(function (row) {
        row.style.display = row.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
  }
  document.body.setAttribute("data-ready", String(graph.querySelectorAll(".node").length));
})();
