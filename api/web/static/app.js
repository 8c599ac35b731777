/* Tiaojie web pages: duplicate suggestions while a complaint is typed (debounced).
   No framework; the server renders the suggestion list as an HTML fragment. */
(function () {
  "use strict";
  var form = document.getElementById("intake-form");
  if (!form) { return; }
  var box = document.getElementById("dup-box");
  var url = form.getAttribute("data-dup-url");
  var fields = ["place_code", "respondent_name", "description"];
  var timer = null;
  var last = "";
  var seq = 0;

  function query() {
    var params = new URLSearchParams();
    params.set("place_code", form.elements.place_code.value);
    params.set("respondent", form.elements.respondent_name.value);
    params.set("description", form.elements.description.value.slice(0, 1000));
    var lang = new URLSearchParams(window.location.search).get("lang");
    if (lang) { params.set("lang", lang); }
    return params.toString();
  }

  function refresh() {
    var q = query();
    if (q === last) { return; }
    last = q;
    var mine = ++seq;
    fetch(url + "?" + q, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (mine !== seq) { return; }  // an older answer arriving late
        box.innerHTML = html;
        box.classList.toggle("has-items", html.trim() !== "");
      })
      .catch(function () { /* suggestions are a help, never a blocker */ });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 350);
  }

  fields.forEach(function (name) {
    var el = form.elements[name];
    if (!el) { return; }
    el.addEventListener("input", schedule);
    el.addEventListener("change", schedule);
  });
  schedule();
})();

/* The receipt's print button (inline handlers are not allowed by the page's CSP). */
(function () {
  "use strict";
  var buttons = document.querySelectorAll("[data-print]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function () { window.print(); });
  }
})();

/* The classifier's suggestion as the complaint is typed; "Use" copies it into the
   category and priority fields (the worker's choice then stands). */
(function () {
  "use strict";
  var form = document.getElementById("intake-form");
  var box = document.getElementById("triage-box");
  if (!form || !box) { return; }
  var url = form.getAttribute("data-triage-url");
  var timer = null;
  var last = "";
  var seq = 0;

  function refresh() {
    var text = form.elements.description.value.slice(0, 2000);
    var people = form.elements.people_affected ? form.elements.people_affected.value : "1";
    var q = "description=" + encodeURIComponent(text) + "&people_affected=" + encodeURIComponent(people || "1");
    var lang = new URLSearchParams(window.location.search).get("lang");
    if (lang) { q += "&lang=" + encodeURIComponent(lang); }
    if (q === last) { return; }
    last = q;
    var mine = ++seq;
    fetch(url + "?" + q, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (mine === seq) { box.innerHTML = html; } })
      .catch(function () { /* a suggestion is a help, never a blocker */ });
  }

  box.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-use-category]");
    if (!b) { return; }
    form.elements.category.value = b.getAttribute("data-use-category");
    var p = b.getAttribute("data-use-priority");
    if (form.elements.priority && p) { form.elements.priority.value = p; }
  });
  ["description", "people_affected"].forEach(function (name) {
    var el = form.elements[name];
    if (!el) { return; }
    el.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 400);
    });
  });
  refresh();
})();
