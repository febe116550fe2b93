/* Lockgate UI: copy buttons, charts (Chart.js), and Tab in code editors. No build step. */
(function () {
  "use strict";

  function copyText(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  function drawCharts(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var source = document.getElementById(canvas.id + "-data");
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var stacked = canvas.dataset.stacked === "true";
      canvas.dataset.drawn = "1";
      new Chart(canvas, {
        type: canvas.dataset.chart,
        data: data,
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true } },
        },
      });
    });
  }

  function codeKeys(event) {
    var area = event.target;
    if (!area.classList || !area.classList.contains("code")) return;
    if (event.key === "Escape") { area.dataset.escaped = "1"; return; }
    if (event.key === "Tab" && !event.shiftKey && !area.dataset.escaped) {
      event.preventDefault();
      var start = area.selectionStart;
      area.setRangeText("  ", start, area.selectionEnd, "end");
      return;
    }
    delete area.dataset.escaped;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (button) copyText(button);
  });
  document.addEventListener("keydown", codeKeys);
  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    if (window.htmx) window.htmx.onLoad(drawCharts);
  });
})();
