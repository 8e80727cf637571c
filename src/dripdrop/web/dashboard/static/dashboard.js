// DripDrop dashboard: the few behaviours htmx does not cover. No inline scripts anywhere
// (the Content-Security-Policy forbids them): everything is wired here from data- attributes.
(function () {
  "use strict";

  // Step form: show only the fields of the chosen timing kind.
  function syncTiming(select) {
    var form = select.closest("form");
    if (!form) return;
    form.querySelectorAll("[data-timing]").forEach(function (box) {
      box.classList.toggle("hidden", box.getAttribute("data-timing") !== select.value);
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-timing-select]")) syncTiming(target);
  });

  // Destructive buttons ask first.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // Phones: the nav's sections are one row that scrolls sideways; show the current one.
  function showCurrentSection() {
    var current = document.querySelector(".nav [aria-current='page']");
    var list = current && current.closest("ul");
    if (!list || list.scrollWidth <= list.clientWidth) return;
    var left = current.getBoundingClientRect().left - list.getBoundingClientRect().left;
    list.scrollLeft += left - (list.clientWidth - current.offsetWidth) / 2;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-timing-select]").forEach(syncTiming);
    showCurrentSection();
  });
  window.addEventListener("resize", showCurrentSection);
})();
