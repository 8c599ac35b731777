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
