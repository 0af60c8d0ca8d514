/* cswb dashboard: draw each panel's Plotly figure from the JSON beside it. The tables and the
   CSV links hold the same numbers, so the page stays complete without this script. */
"use strict";

function drawFigures() {
  if (typeof Plotly === "undefined") {
    return;
  }
  document.querySelectorAll('script[type="application/json"][data-figure]').forEach(function (node) {
    var target = document.getElementById(node.dataset.figure);
    if (!target) {
      return;
    }
    var figure = JSON.parse(node.textContent);
    Plotly.newPlot(target, figure.data, figure.layout, {
      responsive: true, displayModeBar: false, displaylogo: false
    }).then(function () {
      target.dataset.drawn = "true";
    });
  });
}

document.addEventListener("DOMContentLoaded", drawFigures);

/* Leave empty filters out of the address, so links stay short and readable. */
document.addEventListener("submit", function (event) {
  event.target.querySelectorAll("input, select").forEach(function (field) {
    if (field.name && field.value === "") {
      field.disabled = true;
    }
  });
});
