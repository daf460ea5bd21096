/* The newsletter's sign-up box for any page (EMBED_ORIGINS):
 *   <div data-newsletter-signup data-source="sidebar"></div>
 *   <script src="https://news.example/embed.js" async></script>
 * Each marked element (or, without one, the place of the script) becomes a box that
 * posts to /api/subscribe and shows the answer in place. The box speaks the language
 * of its data-language attribute, else the browser's, else the service's default,
 * and the reader's emails speak it too. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script.src).origin;
  var catalogs = {{ catalogs|tojson }};
  var fallback = {{ default_language|tojson }};

  function language(container) {
    var wanted = [container.getAttribute("data-language")].concat(
      navigator.languages || [navigator.language]);
    for (var i = 0; i < wanted.length; i++) {
      var tag = (wanted[i] || "").toLowerCase().replace("_", "-");
      if (catalogs[tag]) { return tag; }
      if (catalogs[tag.split("-")[0]]) { return tag.split("-")[0]; }
    }
    return fallback;
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function field(form, name, label, type, required) {
    var id = "newsletter-" + name + "-" + Math.random().toString(36).slice(2);
    form.appendChild(element("label", { for: id }, label));
    var input = element("input", { id: id, name: name, type: type, autocomplete: name });
    input.required = required;
    form.appendChild(input);
    return input;
  }

  function box(container) {
    var chosen = language(container);
    var words = catalogs[chosen];
    var form = element("form", { "class": "newsletter-signup", novalidate: "", lang: chosen });
    var email = field(form, "email", words.email, "email", true);
    var name = field(form, "name", words.name, "text", false);
    var message = element("p", { role: "status", "aria-live": "polite" });
    var button = element("button", { type: "submit" }, words.subscribe);
    form.appendChild(button);
    form.appendChild(message);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      message.textContent = "";
      fetch(base + "/api/subscribe", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          email: email.value, name: name.value, language: chosen,
          source: container.getAttribute("data-source") || "embed.js"
        })
      }).then(function (response) {
        return response.json().then(function (answer) { return [response.ok, answer]; });
      }).then(function (result) {
        if (result[0]) {
          container.replaceChildren(
            element("p", { role: "status", lang: chosen }, words.success),
            element("p", { lang: chosen }, words.next)
          );
        } else {
          message.textContent = result[1].error || words.failed;
          button.disabled = false;
        }
      }).catch(function () {
        message.textContent = words.unreachable;
        button.disabled = false;
      });
    });
    container.replaceChildren(form);
  }

  var marked = document.querySelectorAll("[data-newsletter-signup]");
  if (marked.length) {
    Array.prototype.forEach.call(marked, box);
  } else {
    var container = element("div", {});
    script.parentNode.insertBefore(container, script.nextSibling);
    box(container);
  }
})();
